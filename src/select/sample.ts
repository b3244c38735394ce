/**
 * Sampling: turn per-document scores into a selection under a token budget. Pure functions over
 * columns (no I/O), so every rule here is tested directly.
 *
 * How scores become preferences (decided here, documented in the README):
 *  - Every metric is "higher is preferred": similarity to the task (ETS), perplexity under the
 *    proxy model (novelty) and POS-tag entropy (diversity), as in FinPythia (metrics/).
 *  - Scores are turned into percentile ranks in (0, 1] (ties share their average rank; the best
 *    document gets 1). Ranks are scale-free, so perplexity's heavy tail cannot swamp the weights
 *    and the three metrics can be averaged for ETS-DACP-com. A missing score (NaN: empty document,
 *    metric not computed) gets rank 0 and is never chosen by soft sampling.
 *  - Hard sampling: documents in decreasing score (ETS-DACP-com: decreasing mean rank), ties broken
 *    by id, until the budget is met.
 *  - Soft sampling: weight w = rank^(1/temperature) (ETS-DACP-com: the mean of the metrics' weights);
 *    documents are drawn without replacement with probability ∝ w by Efraimidis–Spirakis keys
 *    log(u)/w (equivalent to u^(1/w), but without underflow), taken in decreasing key order until
 *    the budget is met. Ordering by these keys is exactly successive weighted draws.
 *  - The budget is met within one document: we stop at the first document that reaches it.
 */
import { Rng } from './prng.js';

/** Percentile ranks in (0, 1] for finite scores (higher score → higher rank); NaN → 0. */
export function percentileRanks(scores: ArrayLike<number>): Float64Array {
  const n = scores.length;
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (Number.isFinite(scores[i])) idx.push(i);
  idx.sort((a, b) => scores[a] - scores[b]);
  const out = new Float64Array(n);
  const m = idx.length;
  for (let i = 0; i < m; ) {
    let j = i;
    while (j + 1 < m && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avg = (i + j) / 2 + 1; // 1-based average rank of the tie group
    for (let k = i; k <= j; k++) out[idx[k]] = avg / m;
    i = j + 1;
  }
  return out;
}

/** Soft-sampling weights of one metric: rank^(1/temperature). */
export function rankWeights(scores: ArrayLike<number>, temperature: number): Float64Array {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const r = percentileRanks(scores);
  const p = 1 / temperature;
  for (let i = 0; i < r.length; i++) r[i] = r[i] > 0 ? Math.pow(r[i], p) : 0;
  return r;
}

/** Element-wise mean of equally long columns. */
export function meanColumns(cols: Float64Array[]): Float64Array {
  if (cols.length === 0) throw new RangeError('meanColumns needs at least one column');
  const out = new Float64Array(cols[0].length);
  for (const c of cols) for (let i = 0; i < c.length; i++) out[i] += c[i];
  for (let i = 0; i < out.length; i++) out[i] /= cols.length;
  return out;
}

/** Indices in decreasing priority; ties (and NaN, placed last) broken by id for determinism. */
export function hardOrder(priority: ArrayLike<number>, ids: readonly string[]): Int32Array {
  const order = Array.from({ length: priority.length }, (_, i) => i);
  const key = (i: number): number => (Number.isFinite(priority[i]) ? priority[i] : -Infinity);
  order.sort((a, b) => key(b) - key(a) || (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
  return Int32Array.from(order);
}

/**
 * Weighted order without replacement (Efraimidis–Spirakis): key_i = log(u_i) / w_i, decreasing.
 * Documents with weight 0 (or NaN) are left out. One uniform per document in index order, so the
 * result depends only on the seed and the weights.
 */
export function softOrder(weights: ArrayLike<number>, seed: number): Int32Array {
  const rng = new Rng(seed);
  const n = weights.length;
  const keys = new Float64Array(n);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    const w = weights[i];
    if (w > 0) {
      keys[i] = Math.log(u) / w;
      keep.push(i);
    }
  }
  keep.sort((a, b) => keys[b] - keys[a] || a - b);
  return Int32Array.from(keep);
}

/** Token budget from a fraction of the corpus tokens (at least one token when fraction > 0). */
export function budgetTokens(fraction: number, corpusTokens: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`budget must be in (0, 1], got ${fraction}`);
  return Math.max(1, Math.ceil(fraction * corpusTokens));
}

/** The prefix of `order` whose tokens first reach `budget` (all of `order` if they never do). */
export function takeBudget(order: Int32Array, tokens: ArrayLike<number>, budget: number): Int32Array {
  let sum = 0;
  for (let k = 0; k < order.length; k++) {
    sum += tokens[order[k]];
    if (sum >= budget) return order.slice(0, k + 1);
  }
  return order.slice();
}

export interface ScoreColumns {
  ids: readonly string[];
  tokens: ArrayLike<number>;
  /** One column per metric, by name. */
  scores: Readonly<Record<string, Float64Array>>;
}

export interface SampleOptions {
  sampling: 'hard' | 'soft';
  /** Metrics to rank by; several → ETS-DACP-com (mean ranks for hard, mean weights for soft). */
  metrics: string[];
  budgetFraction: number;
  temperature: number;
  seed: number;
}

export interface SampleResult {
  /** Chosen row indices, in selection order. */
  indices: Int32Array;
  budget: number;
  corpusTokens: number;
  selectedTokens: number;
  /** The priority each row was ranked by (hard: score or mean rank; soft: weight). */
  priority: Float64Array;
}

/** Choose documents by score under the token budget. */
export function sampleByScore(cols: ScoreColumns, o: SampleOptions): SampleResult {
  if (o.metrics.length === 0) throw new RangeError('sampleByScore needs at least one metric');
  const col = (m: string): Float64Array => {
    const c = cols.scores[m];
    if (!c) throw new RangeError(`the score table has no ${m} column`);
    return c;
  };
  let corpusTokens = 0;
  for (let i = 0; i < cols.tokens.length; i++) corpusTokens += cols.tokens[i];
  const budget = budgetTokens(o.budgetFraction, corpusTokens);
  let priority: Float64Array;
  let order: Int32Array;
  if (o.sampling === 'hard') {
    priority = o.metrics.length === 1 ? col(o.metrics[0]) : meanColumns(o.metrics.map((m) => percentileRanks(col(m))));
    order = hardOrder(priority, cols.ids);
  } else {
    priority = meanColumns(o.metrics.map((m) => rankWeights(col(m), o.temperature)));
    order = softOrder(priority, o.seed);
  }
  const indices = takeBudget(order, cols.tokens, budget);
  let selectedTokens = 0;
  for (const i of indices) selectedTokens += cols.tokens[i];
  return { indices, budget, corpusTokens, selectedTokens, priority };
}
