import type { Engine } from '../engine/engine.js';

/** Fixed-length token rows, as the packer writes them. */
export interface HeldOutRows {
  seqLen: number;
  count: number;
  read(start: number, n: number): Int32Array;
}

/**
 * Held-out loss for the monitor (Fin-test, Pile-test): always the first `rows` rows of a packed
 * set, so every evaluation of a run sees the same tokens (and runs with the same corpus, seq_len
 * and seed, as compared in one plot, see the same rows). Mean next-token loss over those rows,
 * `microBatch` rows per engine call.
 */
export function heldOutLoss(engine: Engine, ds: HeldOutRows, rows: number, microBatch: number): number {
  const n = Math.min(rows, ds.count);
  let sum = 0;
  for (let s = 0; s < n; s += microBatch) {
    const b = Math.min(microBatch, n - s);
    sum += engine.evalLoss(ds.read(s, b), b, ds.seqLen) * b; // every row has seqLen - 1 predictions
  }
  return sum / n;
}

