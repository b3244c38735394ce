/** Metrics as lm-evaluation-harness / FLARE compute them. Pure functions, no I/O. */
import { mulberry32 } from '../util/rng.js';

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length ? s / xs.length : NaN;
}

/** lm-eval's `mean_stderr`: sample standard deviation (n - 1) / sqrt(n). */
export function meanStderr(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const m = mean(xs);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i]! - m) ** 2;
  return Math.sqrt(ss / (n - 1)) / Math.sqrt(n);
}

/** Index of the largest value (first on ties, as numpy argmax). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/**
 * Index of the single largest value, or -1 when two or more share it: a model that cannot tell
 * the choices apart (a constant predictor's usual state) gets no credit for the first of them.
 */
export function strictArgmax(xs: ArrayLike<number>): number {
  const best = argmax(xs);
  for (let i = 0; i < xs.length; i++) if (i !== best && xs[i] === xs[best]) return -1;
  return best;
}

/**
 * lm-eval multiple choice: acc = argmax of the log-likelihoods; acc_norm = argmax of the
 * log-likelihoods divided by each choice's length in characters. Ties count as wrong (-1).
 */
export function pickChoice(lls: ArrayLike<number>, choices: readonly string[]): { pred: number; predNorm: number } {
  const norm = Array.from(lls, (ll, i) => ll / choices[i]!.length);
  return { pred: strictArgmax(lls), predNorm: strictArgmax(norm) };
}

/** p := softmax(p), in place (shifted by the max: no overflow). */
export function softmaxInPlace(p: Float64Array): void {
  let mx = -Infinity, z = 0;
  for (const v of p) mx = Math.max(mx, v);
  for (let c = 0; c < p.length; c++) z += p[c] = Math.exp(p[c]! - mx);
  for (let c = 0; c < p.length; c++) p[c] /= z;
}

/**
 * Continuous likelihood metrics of one multiple-choice document (as DataDecide argues for
 * ranking pre-training data at small scale): the gold continuation's log-likelihood, and the
 * probability margin of gold over the best wrong choice (probabilities renormalised over the
 * choices); `_norm` variants divide log-likelihoods by the choice's length in characters, as
 * lm-eval's acc_norm does. Unlike accuracy they move whenever the likelihoods move.
 */
export function choiceLikelihoods(lls: ArrayLike<number>, choices: readonly string[], gold: number): {
  goldLogprob: number; goldLogprobNorm: number; margin: number; marginNorm: number;
} {
  const margin = (xs: number[]): number => {
    const p = Float64Array.from(xs);
    softmaxInPlace(p);
    let wrong = 0;
    p.forEach((x, i) => (i !== gold ? (wrong = Math.max(wrong, x)) : 0));
    return p[gold]! - wrong;
  };
  const raw = Array.from(lls), norm = raw.map((ll, i) => ll / choices[i]!.length);
  return { goldLogprob: raw[gold]!, goldLogprobNorm: norm[gold]!, margin: margin(raw), marginNorm: margin(norm) };
}

/**
 * sklearn `f1_score(average='weighted')`: per-label F1 over the labels in gold ∪ pred, averaged
 * with weights = the label's support in gold. A label with no predictions has F1 0.
 */
export function weightedF1(gold: ArrayLike<number>, pred: ArrayLike<number>): number {
  const labels = new Set<number>();
  for (let i = 0; i < gold.length; i++) labels.add(gold[i]!).add(pred[i]!);
  let total = 0;
  let sum = 0;
  for (const l of labels) {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < gold.length; i++) {
      const g = gold[i] === l, p = pred[i] === l;
      if (g && p) tp++;
      else if (p) fp++;
      else if (g) fn++;
    }
    const support = tp + fn;
    const f1 = tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
    sum += f1 * support;
    total += support;
  }
  return total ? sum / total : NaN;
}

/** Entity-level micro F1 on exact (group, start, end, type) matches, as seqeval. */
export interface Span {
  group: string;
  start: number;
  end: number;
  type: string;
}
export function entityF1(gold: readonly Span[], pred: readonly Span[]): { precision: number; recall: number; f1: number } {
  const key = (s: Span) => `${s.group}\0${s.start}\0${s.end}\0${s.type}`;
  const g = new Set(gold.map(key));
  const p = new Set(pred.map(key));
  let tp = 0;
  for (const k of p) if (g.has(k)) tp++;
  const precision = p.size ? tp / p.size : 0;
  const recall = g.size ? tp / g.size : 0;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
}

/** lm-eval's perplexity aggregation: exp(-mean of per-document log-likelihoods). */
export function perplexity(lls: ArrayLike<number>): number {
  return Math.exp(-mean(lls));
}

/** Bootstrap standard error of a statistic over n items (lm-eval bootstraps F1 the same way). */
export function bootstrapStderr(n: number, stat: (idx: Int32Array) => number, iters = 1000, seed = 1234): number {
  if (n < 2) return NaN;
  const r = mulberry32(seed);
  const vals: number[] = [];
  const idx = new Int32Array(n);
  for (let k = 0; k < iters; k++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(r() * n);
    vals.push(stat(idx));
  }
  const m = mean(vals);
  return Math.sqrt(vals.reduce((s, v) => s + (v - m) ** 2, 0) / (iters - 1));
}
