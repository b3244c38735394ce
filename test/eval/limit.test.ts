import { describe, expect, it } from 'vitest';
import { loadTask } from '../../src/data/tasks/index.js';
import { limitDocs } from '../../src/eval/run.js';
import { dataDir } from '../../src/util/paths.js';

describe('--limit', () => {
  it('samples by a seeded hash, not the first N: FPB (grouped by label in the file) keeps its label mix', async () => {
    const test = (await loadTask('fpb', dataDir())).splits.test!;
    const share = (ds: typeof test) => ds.filter((d) => d.gold === 2).length / ds.length;
    expect(share(test.slice(0, 100))).toBeGreaterThan(0.8); // why the first N would mislead
    const a = limitDocs(test, 100, false, 1234);
    expect(a).toHaveLength(100);
    expect(Math.abs(share(a) - share(test))).toBeLessThan(0.12);
    expect(limitDocs(test, 100, false, 1234).map((d) => d.id)).toEqual(a.map((d) => d.id));
    expect(limitDocs(test, 100, false, 7).map((d) => d.id)).not.toEqual(a.map((d) => d.id));
    // kept in file order
    const pos = new Map(test.map((d, i) => [d.id, i]));
    expect(a.map((d) => pos.get(d.id)!)).toEqual([...a.map((d) => pos.get(d.id)!)].sort((x, y) => x - y));
  });

  it('keeps whole groups for grouped tasks (NER sentences)', async () => {
    const test = (await loadTask('ner', dataDir())).splits.test!;
    const kept = limitDocs(test, 20, true, 1234);
    const groups = new Set(kept.map((d) => d.group));
    expect(groups.size).toBe(20);
    for (const g of groups) expect(kept.filter((d) => d.group === g).length).toBe(test.filter((d) => d.group === g).length);
  });
});
