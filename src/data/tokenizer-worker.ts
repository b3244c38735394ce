/** Worker side of the tokenizer pool: loads the tokenizer once, encodes batches on request. */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BytePairEncoder, type TokenizerJson } from './bpe.js';

const { file } = workerData as { file: string };
const bpe = new BytePairEncoder(JSON.parse(readFileSync(file, 'utf8')) as TokenizerJson, file);

parentPort!.on('message', (m: { id: number; texts: string[] }) => {
  try {
    const ids = m.texts.map((t) => bpe.encode(t));
    parentPort!.postMessage({ id: m.id, ids }, ids.map((a) => a.buffer as ArrayBuffer));
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
