/**
 * The CPU text scorers (hashed similarity and POS entropy) over a batch of texts. Runs the same in a
 * worker thread (text-worker.ts) and on the calling thread.
 */
import { HashedEmbedder, cosineSparseDense, type HashedSpec } from './hashed.js';
import { posEntropy } from './entropy.js';

export interface TextScoreSetup {
  /** Hashed similarity: the embedder spec and the unit task centroid; null = not computed. */
  hashed: { spec: HashedSpec; task: Float32Array } | null;
  entropy: boolean;
}

export interface TextScores {
  similarity: Float64Array; // NaN where not computed
  entropy: Float64Array; // NaN where not computed
  words: number; // word tokens seen by the POS tagger
}

export class TextScorer {
  private readonly embedder: HashedEmbedder | null;
  constructor(private readonly setup: TextScoreSetup) {
    this.embedder = setup.hashed ? new HashedEmbedder(setup.hashed.spec) : null;
  }

  score(texts: string[]): TextScores {
    const n = texts.length;
    const similarity = new Float64Array(n).fill(NaN);
    const entropy = new Float64Array(n).fill(NaN);
    let words = 0;
    for (let i = 0; i < n; i++) {
      if (this.embedder) similarity[i] = cosineSparseDense(this.embedder.embed(texts[i]), this.setup.hashed!.task);
      if (this.setup.entropy) {
        const e = posEntropy(texts[i]);
        entropy[i] = e.bits;
        words += e.words;
      }
    }
    return { similarity, entropy, words };
  }
}
