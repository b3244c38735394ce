/**
 * ETA-DACP novelty: perplexity exp(mean next-token loss) of each document's first `maxTokens`
 * tokens under the proxy model. Documents are sorted by length and batched so a batch pads only to
 * its own longest row; padding is on the right, so causal attention keeps it from touching the real
 * positions, and its log-probs are dropped.
 */
import type { Engine } from '../engine/index.js';

export interface BatchPlan {
  /** Row indices (into the docs) of each batch, and the padded length of that batch. */
  batches: { rows: number[]; seq: number }[];
}

/**
 * Length-bucketed batches: rows sorted by decreasing length, each batch holding as many rows as fit
 * in `batchTokens` at its first (longest) row's length, and only rows at least half that long.
 * Rows shorter than `minLen` are skipped.
 */
export function planBatches(lengths: ArrayLike<number>, batchTokens: number, minLen: number, maxRows = 64): BatchPlan {
  const rows: number[] = [];
  for (let i = 0; i < lengths.length; i++) if (lengths[i] >= minLen) rows.push(i);
  rows.sort((a, b) => lengths[b] - lengths[a] || a - b);
  const batches: BatchPlan['batches'] = [];
  for (let k = 0; k < rows.length; ) {
    const seq = lengths[rows[k]];
    const cap = Math.max(1, Math.min(maxRows, Math.floor(batchTokens / seq)));
    // A row under half the batch's length starts a new batch: padding stays below half of it.
    let end = k + 1;
    while (end < rows.length && end - k < cap && 2 * lengths[rows[end]] >= seq) end++;
    batches.push({ rows: rows.slice(k, end), seq });
    k = end;
  }
  return { batches };
}

/** Right-padded [rows, seq] id matrix; `padId` fills past each row's length. */
export function padRows(docs: Int32Array[], rows: number[], seq: number, maxTokens: number, padId = 0): Int32Array {
  const ids = new Int32Array(rows.length * seq).fill(padId);
  rows.forEach((r, b) => ids.set(docs[r].subarray(0, Math.min(maxTokens, seq)), b * seq));
  return ids;
}

export interface PerplexityOptions {
  /** Tokens of each document scored (its first ones). */
  maxTokens: number;
  /** Tokens per engine call (rows × padded length). */
  batchTokens: number;
}

/** Perplexity per document; NaN for documents with fewer than 2 tokens (nothing to predict). */
export function perplexities(engine: Engine, docs: Int32Array[], o: PerplexityOptions): Float64Array {
  const lengths = docs.map((d) => Math.min(d.length, o.maxTokens));
  const out = new Float64Array(docs.length).fill(NaN);
  for (const { rows, seq } of planBatches(lengths, o.batchTokens, 2).batches) {
    const ids = padRows(docs, rows, seq, o.maxTokens);
    const lp = engine.tokenLogprobs(ids, rows.length, seq);
    rows.forEach((r, b) => {
      const n = lengths[r] - 1; // predictions of the real tokens only
      let s = 0;
      const base = b * (seq - 1);
      for (let t = 0; t < n; t++) s += lp[base + t];
      out[r] = Math.exp(-s / n);
    });
  }
  return out;
}

/** Unit-length mean-pooled final hidden states of each document's first `maxTokens` tokens. */
export function meanHiddenEmbeddings(engine: Engine, docs: Int32Array[], o: PerplexityOptions): Float32Array[] {
  const lengths = docs.map((d) => Math.min(d.length, o.maxTokens));
  const H = engine.config.hidden_size;
  const out: Float32Array[] = docs.map(() => new Float32Array(H));
  for (const { rows, seq } of planBatches(lengths, o.batchTokens, 1).batches) {
    const ids = padRows(docs, rows, seq, o.maxTokens);
    const h = engine.meanHidden(ids, rows.length, seq, Int32Array.from(rows, (r) => lengths[r]));
    rows.forEach((r, b) => {
      const v = h.slice(b * H, (b + 1) * H);
      normalise(v);
      out[r] = v;
    });
  }
  return out;
}

export function normalise(v: Float32Array): void {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  if (s === 0) return;
  const k = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i] *= k;
}

/** Cosine of two dense unit vectors; NaN when either is the zero vector. */
export function cosineDense(a: Float32Array, b: Float32Array): number {
  let s = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? NaN : s / Math.sqrt(na * nb);
}

/** Mean of dense vectors, renormalised (the task centroid). */
export function denseCentroid(vs: Float32Array[], dim: number): Float32Array {
  const c = new Float32Array(dim);
  for (const v of vs) for (let i = 0; i < dim; i++) c[i] += v[i];
  normalise(c);
  return c;
}
