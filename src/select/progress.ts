/** Console progress of a selection, shared by `cpt select` and `cpt train`: phase lines, and count / rate / ETA while scoring. */
import { Progress, fmtRate } from '../util/progress.js';
import type { SelectionProgress } from './index.js';

export function selectionProgress(out: NodeJS.WriteStream = process.stderr): { onProgress: (p: SelectionProgress) => void; finish: () => void } {
  let bar: Progress | null = null;
  let scoreStart = 0;
  let doneDocs = 0;
  let lastPhase = '';
  let extra = '';
  return {
    onProgress(p) {
      if (p.phase !== lastPhase) {
        if (lastPhase === 'score' || lastPhase === 'tokenize') bar?.finish(extra);
        bar = null;
        doneDocs = 0;
        extra = '';
        if (p.phase !== 'score' && p.phase !== 'tokenize') out.write(`select: ${p.phase}${p.message ? `: ${p.message}` : ''}\n`);
        lastPhase = p.phase;
      }
      // Notices while tokenizing or scoring (a damaged cache file being rebuilt).
      if (p.message && (p.phase === 'score' || p.phase === 'tokenize')) out.write(`select: ${p.message}\n`);
      if (p.phase === 'tokenize' && p.tokenize) {
        const t = p.tokenize;
        bar ??= new Progress('select: tokenizing the corpus (once; scoring and training read the cache)', t.totalDocs, 'docs', out);
        extra = `${t.tokens.toLocaleString('en-US')} tokens`;
        bar.add(t.docs - doneDocs, extra);
        doneDocs = t.docs;
      }
      if (p.phase === 'score' && p.score) {
        const s = p.score;
        if (!bar) {
          if (s.skippedShards) out.write(`select: resuming scoring (${s.skippedShards} of ${s.shards} shards already scored)\n`);
          bar = new Progress('select: scoring', p.totalDocs, 'docs', out);
          scoreStart = Date.now();
        }
        const secs = (Date.now() - scoreStart) / 1000;
        extra = `${secs > 0.5 ? fmtRate(s.chars / 1e6 / secs) : '?'} MB/s | shard ${s.shard}/${s.shards}`;
        bar.add(s.docs - doneDocs, extra);
        doneDocs = s.docs;
      }
    },
    finish() {
      if (lastPhase === 'score' || lastPhase === 'tokenize') bar?.finish(extra);
    },
  };
}
