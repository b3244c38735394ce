/** Worker side of the text-scorer pool: builds a TextScorer once, scores batches on request. */
import { parentPort, workerData } from 'node:worker_threads';
import { TextScorer, type TextScoreSetup } from './text-score.js';

const scorer = new TextScorer((workerData as { setup: TextScoreSetup }).setup);

parentPort!.on('message', (m: { id: number; texts: string[] }) => {
  try {
    const r = scorer.score(m.texts);
    parentPort!.postMessage({ id: m.id, ...r }, [r.similarity.buffer as ArrayBuffer, r.entropy.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
