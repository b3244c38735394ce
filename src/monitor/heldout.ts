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

/**
 * Mean next-token loss of each row, batched: rows are right-padded with `padId`, which causal
 * attention makes invisible to the real positions, and only each row's own predictions count.
 */
export function rowLosses(engine: Engine, rows: Int32Array[], padId: number): (number | null)[] {
  const out: (number | null)[] = rows.map(() => null);
  const live = rows.map((r, i) => i).filter((i) => rows[i].length >= 2);
  if (!live.length) return out;
  const seq = Math.max(...live.map((i) => rows[i].length));
  const ids = new Int32Array(live.length * seq).fill(padId);
  live.forEach((i, b) => ids.set(rows[i], b * seq));
  const lp = engine.tokenLogprobs(ids, live.length, seq);
  live.forEach((i, b) => {
    let s = 0;
    const n = rows[i].length - 1;
    for (let t = 0; t < n; t++) s += lp[b * (seq - 1) + t];
    out[i] = -s / n;
  });
  return out;
}

/** Token-weighted mean loss over tokenized rows, `batch` rows per engine call. */
export function rowsLoss(engine: Engine, rows: Int32Array[], padId: number, batch: number): { loss: number; tokens: number } {
  let sum = 0, n = 0;
  for (let b0 = 0; b0 < rows.length; b0 += batch) {
    const part = rows.slice(b0, b0 + batch);
    rowLosses(engine, part, padId).forEach((l, i) => {
      if (l === null) return;
      sum += l * (part[i]!.length - 1);
      n += part[i]!.length - 1;
    });
  }
  return { loss: n ? sum / n : NaN, tokens: n };
}
