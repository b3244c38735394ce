import type { Recipe } from '../recipe/types.js';
import { UserError } from '../util/errors.js';
import { mulberry32 } from '../util/rng.js';

/** How a recipe's batch and budget settings map onto engine calls and optimizer steps. */
export interface TrainPlan {
  seqLen: number;
  microBatch: number;
  /** Micro-batches accumulated per optimizer step (gradScale = 1 / accum). */
  accum: number;
  rowsPerStep: number;
  tokensPerStep: number;
  /** Optimizer steps in the whole run (the schedule spans these). */
  totalSteps: number;
  /** Rows in the packed training data (one epoch). */
  rows: number;
}

/**
 * Steps = one pass over the packed rows × epochs, cut by max_tokens and max_steps. The global
 * batch is `batch_tokens` rounded to whole micro-batches (at least one).
 */
export function planTraining(t: Recipe['train'], rows: number): TrainPlan {
  const accum = Math.max(1, Math.round(t.batch_tokens / (t.micro_batch * t.seq_len)));
  const rowsPerStep = accum * t.micro_batch;
  const tokensPerStep = rowsPerStep * t.seq_len;
  let totalRows = Math.floor(rows * t.epochs);
  if (t.max_tokens !== undefined) totalRows = Math.min(totalRows, Math.floor(t.max_tokens / t.seq_len));
  let totalSteps = Math.floor(totalRows / rowsPerStep);
  if (t.max_steps !== undefined) totalSteps = Math.min(totalSteps, t.max_steps);
  if (totalSteps < 1) {
    throw new UserError(
      `train: the data gives ${rows} rows of ${t.seq_len} tokens (× ${t.epochs} epochs), fewer than one ` +
        `global batch of ${rowsPerStep} rows (train.batch_tokens ${t.batch_tokens}); lower train.batch_tokens or add data`,
    );
  }
  return { seqLen: t.seq_len, microBatch: t.micro_batch, accum, rowsPerStep, tokensPerStep, totalSteps, rows };
}

/**
 * Row order: epoch 0 reads the packed rows in file order (already shuffled by the packer's seed);
 * each later epoch reads a fresh permutation seeded by (seed, epoch). So the data position is the
 * cursor alone, and the RNG state to save is (seed, epoch).
 */
export class RowOrder {
  private epoch = -1;
  private perm: Uint32Array | undefined;
  constructor(private readonly rows: number, private readonly seed: number) {}

  /** Physical row index of the `cursor`-th row read in the run. */
  row(cursor: number): number {
    const epoch = Math.floor(cursor / this.rows);
    const i = cursor % this.rows;
    if (epoch === 0) return i;
    if (epoch !== this.epoch) {
      this.perm = permutation(this.rows, mix32(this.seed, epoch));
      this.epoch = epoch;
    }
    return this.perm![i];
  }

  /** Epochs that need a row permutation share this RNG description. */
  rngState(cursor: number): { algorithm: string; seed: number; epoch: number } {
    return { algorithm: 'mulberry32-fisher-yates', seed: this.seed, epoch: Math.floor(cursor / this.rows) };
  }
}

function mix32(a: number, b: number): number {
  let h = (a ^ Math.imul(b + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}
