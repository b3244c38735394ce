/**
 * Hashed bag-of-words embedding (the "hashing trick"): word unigrams (+ bigrams when ngrams = 2)
 * hashed into `dim` buckets with a ±1 sign from a second hash bit (so collisions cancel in
 * expectation), sublinear term frequency 1 + ln(tf), English stop words dropped, L2-normalised.
 *
 * Why this is the default embedder: the paper scored ETS-DACP with spaCy document vectors, which
 * are averaged word vectors — a bag-of-words representation. A hashed TF vector is the faithful
 * cheap analogue: no model, no download, streams at tens of MB/s, and cosine similarity to the
 * task centroid rewards documents sharing the task's vocabulary (earnings, shares, profit, ...).
 * Stop words are dropped because with raw counts they would dominate every cosine.
 */

/** A sparse L2-normalised vector: parallel bucket indices and values. */
export interface SparseVec {
  idx: Int32Array;
  val: Float32Array;
}

export interface HashedSpec {
  dim: number;
  ngrams: number;
}

const STOP_WORDS = (
  'a about above after again against all am an and any are as at be because been before being below between both but by ' +
  'can could did do does doing down during each few for from further had has have having he her here hers herself him ' +
  'himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other ' +
  'our ours ourselves out over own same she should so some such than that the their theirs them themselves then there ' +
  'these they this those through to too under until up very was we were what when where which while who whom why will ' +
  'with would you your yours yourself yourselves s t said says also mr mrs dlrs pct reuter'
).split(' ');

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv(word: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

const STOP = new Set(STOP_WORDS.map(fnv));

/** murmur3 finaliser: decorrelates bucket and sign bits, and mixes bigram pairs. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A word is a run of ASCII letters/digits or any character from U+00C0 up (accented Latin and other
 * scripts), lower-cased; everything else separates. Hashing happens during the scan, so no
 * substrings are allocated.
 */
export function hashWords(text: string, out: number[]): void {
  out.length = 0;
  let h = FNV_OFFSET;
  let inWord = false;
  for (let i = 0, n = text.length; i <= n; i++) {
    let c = i < n ? text.charCodeAt(i) : 32;
    const isWord = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || c >= 0xc0;
    if (isWord) {
      if (c >= 65 && c <= 90) c |= 0x20;
      h = Math.imul(h ^ c, FNV_PRIME);
      inWord = true;
    } else if (inWord) {
      out.push(h >>> 0);
      h = FNV_OFFSET;
      inWord = false;
    }
  }
}

/** Reusable scratch for embedding many documents without per-document allocation of dense arrays. */
export class HashedEmbedder {
  private readonly dense: Float32Array;
  private readonly touched: Uint8Array;
  private readonly order: number[] = [];
  private readonly words: number[] = [];
  readonly dim: number;
  readonly ngrams: number;

  constructor(spec: HashedSpec) {
    if (!(Number.isInteger(spec.dim) && spec.dim > 0)) throw new RangeError(`hashed dim must be a positive integer, got ${spec.dim}`);
    if (spec.ngrams !== 1 && spec.ngrams !== 2) throw new RangeError(`hashed ngrams must be 1 or 2, got ${spec.ngrams}`);
    this.dim = spec.dim;
    this.ngrams = spec.ngrams;
    this.dense = new Float32Array(spec.dim);
    this.touched = new Uint8Array(spec.dim);
  }

  /** Embed one text; an empty (or all-stop-word) text gives the zero vector (no entries). */
  embed(text: string): SparseVec {
    const { dense, touched, dim, words, order } = this;
    hashWords(text, words);
    order.length = 0;
    const add = (h: number): void => {
      const m = fmix(h);
      const j = m % dim;
      // Track touched buckets by flag, not value: a +1 and a -1 can sum to exactly 0.
      if (touched[j] === 0) {
        touched[j] = 1;
        order.push(j);
      }
      dense[j] += m & 0x80000000 ? -1 : 1;
    };
    let prev = -1;
    for (let k = 0; k < words.length; k++) {
      const w = words[k];
      if (STOP.has(w)) {
        prev = -1; // do not bridge bigrams over stop words
        continue;
      }
      add(w);
      if (this.ngrams === 2 && prev !== -1) add(Math.imul(prev, 0x9e3779b1) ^ w ^ 0x5bd1e995);
      prev = w;
    }
    return this.finish(order);
  }

  private finish(order: number[]): SparseVec {
    const { dense, touched } = this;
    const idx = new Int32Array(order.length);
    const val = new Float32Array(order.length);
    let norm = 0;
    for (let k = 0; k < order.length; k++) {
      const j = order[k];
      const c = dense[j];
      // Sublinear tf keeps the sign of the (signed) bucket count.
      const v = c === 0 ? 0 : Math.sign(c) * (1 + Math.log(Math.abs(c)));
      idx[k] = j;
      val[k] = v;
      norm += v * v;
      dense[j] = 0;
      touched[j] = 0;
    }
    if (norm > 0) {
      const s = 1 / Math.sqrt(norm);
      for (let k = 0; k < val.length; k++) val[k] *= s;
    }
    return { idx, val };
  }
}

/** Mean of sparse unit vectors as a dense vector, renormalised to unit length (the task centroid). */
export function centroid(vecs: SparseVec[], dim: number): Float32Array {
  const c = new Float64Array(dim);
  for (const v of vecs) for (let k = 0; k < v.idx.length; k++) c[v.idx[k]] += v.val[k];
  let norm = 0;
  for (let j = 0; j < dim; j++) norm += c[j] * c[j];
  const out = new Float32Array(dim);
  if (norm === 0) return out;
  const s = 1 / Math.sqrt(norm);
  for (let j = 0; j < dim; j++) out[j] = c[j] * s;
  return out;
}

/** Cosine between a unit sparse vector and a unit dense vector; NaN for the zero vector. */
export function cosineSparseDense(v: SparseVec, d: Float32Array): number {
  if (v.idx.length === 0) return NaN;
  let s = 0;
  for (let k = 0; k < v.idx.length; k++) s += v.val[k] * d[v.idx[k]];
  return s;
}
