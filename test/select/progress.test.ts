import { describe, expect, it } from 'vitest';
import { selectionProgress } from '../../src/select/progress.js';

describe('selection progress', () => {
  it('phase lines, then count / rate / ETA while scoring, closed when the phase ends', () => {
    let text = '';
    const out = { isTTY: false, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
    const p = selectionProgress(out);
    p.onProgress({ phase: 'prepare', message: 'preparing corpus' });
    const score = { shard: 1, shards: 2, skippedShards: 1, docs: 0, chars: 0 };
    p.onProgress({ phase: 'score', score, totalDocs: 200, totalChars: 1e6 });
    p.onProgress({ phase: 'score', score: { ...score, docs: 120, chars: 6e5 }, totalDocs: 200, totalChars: 1e6 });
    p.onProgress({ phase: 'sample' });
    p.finish();
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('select: prepare: preparing corpus');
    expect(lines[1]).toBe('select: resuming scoring (1 of 2 shards already scored)');
    expect(lines.at(-2)).toMatch(/^select: scoring 120\/200 docs \| .* docs\/s \| \d+s( eta \S+)? \| .* MB\/s \| shard 1\/2$/);
    expect(lines.at(-1)).toBe('select: sample');
  });
});
