import { describe, expect, it } from 'vitest';
import { HashedEmbedder, centroid, cosineSparseDense, hashWords } from '../../src/select/hashed.js';
import { entropyBits, posEntropy, wordPosTags } from '../../src/select/entropy.js';
import { TextScorerPool } from '../../src/select/text-pool.js';
import { TextScorer } from '../../src/select/text-score.js';
import { perplexities, planBatches, meanHiddenEmbeddings } from '../../src/select/perplexity.js';
import type { Engine } from '../../src/engine/engine.js';
import type { NeoXConfig } from '../../src/model/config.js';

describe('hashed embedder', () => {
  const e = new HashedEmbedder({ dim: 4096, ngrams: 2 });
  const dense = (text: string): Float32Array => centroid([e.embed(text)], 4096);

  it('splits words case-insensitively and hashes equal words equally', () => {
    const a: number[] = [], b: number[] = [];
    hashWords('Profit, profit; PROFIT!', a);
    expect(a.length).toBe(3);
    expect(new Set(a).size).toBe(1);
    hashWords('  net-income 2023 ', b);
    expect(b.length).toBe(3);
  });

  it('gives unit vectors; identical texts have cosine 1, disjoint vocabularies ~0', () => {
    const v = e.embed('Quarterly net profit rose sharply on higher sales');
    const norm = Math.sqrt(v.val.reduce((s, x) => s + x * x, 0));
    expect(norm).toBeCloseTo(1, 6);
    expect(cosineSparseDense(v, dense('quarterly NET profit rose sharply, on higher sales.'))).toBeCloseTo(1, 6);
    const far = cosineSparseDense(e.embed('The whale swam beneath the stormy ocean waves'), dense('Quarterly net profit rose sharply on higher sales'));
    expect(Math.abs(far)).toBeLessThan(0.2);
  });

  it('ranks a financial sentence closer to financial task text than a literary one', () => {
    const task = centroid(
      ['Operating profit rose to EUR 13.1 mn from EUR 8.7 mn', 'Net sales decreased by 5% in the third quarter', 'The company reported a quarterly loss per share'].map((t) => e.embed(t)),
      4096,
    );
    const fin = cosineSparseDense(e.embed('Third quarter net sales and operating profit rose, the company said'), task);
    const lit = cosineSparseDense(e.embed('Emma Woodhouse, handsome, clever, and rich, with a comfortable home'), task);
    expect(fin).toBeGreaterThan(lit + 0.2);
  });

  it('stop words and empty text give the zero vector (similarity NaN)', () => {
    expect(e.embed('the of and to').idx.length).toBe(0);
    expect(cosineSparseDense(e.embed(''), dense('profit'))).toBeNaN();
  });
});

describe('POS entropy', () => {
  it('computes Shannon entropy in bits', () => {
    expect(entropyBits([5])).toBe(0);
    expect(entropyBits([1, 1])).toBeCloseTo(1, 12);
    expect(entropyBits([1, 1, 1, 1])).toBeCloseTo(2, 12);
    expect(entropyBits([2, 1, 1])).toBeCloseTo(1.5, 12);
    expect(entropyBits([])).toBeNaN();
  });

  it('tags only word tokens and matches entropy of the tag counts', () => {
    const text = 'The company sold its shares quickly, and investors were happy.';
    const tags = wordPosTags(text);
    expect(tags.length).toBe(10); // punctuation is not a word
    const counts = new Map<string, number>();
    for (const t of tags) counts.set(t, (counts.get(t) ?? 0) + 1);
    const r = posEntropy(text);
    expect(r.words).toBe(10);
    expect(r.bits).toBeCloseTo(entropyBits(counts.values()), 12);
  });

  it('a list of nouns is less diverse than a full sentence; no words → NaN', () => {
    const nouns = posEntropy('shares profit sales revenue market dividend');
    const sentence = posEntropy('The board quickly approved a larger dividend because profits rose in March.');
    expect(nouns.bits).toBeLessThan(sentence.bits);
    expect(posEntropy('... !!! ,,,').bits).toBeNaN();
  });
});

describe('text scorer pool', () => {
  it('workers give the same scores as the calling thread', async () => {
    const e = new HashedEmbedder({ dim: 1024, ngrams: 2 });
    const setup = { hashed: { spec: { dim: 1024, ngrams: 2 }, task: centroid([e.embed('net profit rose on higher sales')], 1024) }, entropy: true };
    const texts = Array.from({ length: 400 }, (_, i) => `Document ${i}: net sales rose ${i} percent while the company ${i % 3 ? 'cut' : 'raised'} its dividend. `.repeat(1 + (i % 5)));
    const local = new TextScorer(setup).score(texts);
    const pool = new TextScorerPool(setup, 2);
    try {
      const r = await pool.score(texts);
      expect(Array.from(r.similarity)).toEqual(Array.from(local.similarity));
      expect(Array.from(r.entropy)).toEqual(Array.from(local.entropy));
      expect(r.words).toBe(local.words);
    } finally {
      await pool.close();
    }
  });
});

/** A stand-in engine with a fixed next-token distribution: log p(next = j) = logp[j], independent of context. */
function unigramEngine(logp: number[], hidden = 4): { engine: Engine; calls: { batch: number; seq: number }[] } {
  const calls: { batch: number; seq: number }[] = [];
  const config = { hidden_size: hidden } as NeoXConfig;
  const engine = {
    name: 'fake',
    config,
    tokenLogprobs(ids: Int32Array, batch: number, seq: number): Float32Array {
      calls.push({ batch, seq });
      const out = new Float32Array(batch * (seq - 1));
      for (let b = 0; b < batch; b++) for (let t = 0; t < seq - 1; t++) out[b * (seq - 1) + t] = logp[ids[b * seq + t + 1]];
      return out;
    },
    meanHidden(ids: Int32Array, batch: number, seq: number, lengths: Int32Array): Float32Array {
      calls.push({ batch, seq });
      // hidden[k] = mean over the first lengths[b] positions of (id == k)
      const out = new Float32Array(batch * hidden);
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < lengths[b]; t++) out[b * hidden + (ids[b * seq + t] % hidden)] += 1 / lengths[b];
      }
      return out;
    },
  } as unknown as Engine;
  return { engine, calls };
}

describe('perplexity', () => {
  it('plans length-bucketed batches within the token budget', () => {
    const p = planBatches([5, 100, 1, 50, 100, 7], 200, 2);
    expect(p.batches.map((b) => b.rows)).toEqual([[1, 4], [3], [5, 0]]);
    expect(p.batches.map((b) => b.seq)).toEqual([100, 50, 7]);
  });

  it('equals exp(mean next-token loss) of each document alone, padding masked, truncated', () => {
    const logp = [Math.log(0.5), Math.log(0.25), Math.log(0.125), Math.log(0.125)];
    const { engine, calls } = unigramEngine(logp);
    const docs = [Int32Array.from([0, 1, 1, 2]), Int32Array.from([3]), Int32Array.from([2, 0, 0, 0, 0, 0, 0, 3, 3, 3]), Int32Array.from([1, 3])];
    const ppl = perplexities(engine, docs, { maxTokens: 6, batchTokens: 12 });
    const alone = (d: Int32Array): number => {
      const x = d.subarray(0, 6);
      let s = 0;
      for (let t = 1; t < x.length; t++) s += logp[x[t]];
      return Math.exp(-s / (x.length - 1));
    };
    expect(ppl[0]).toBeCloseTo(alone(docs[0]), 5);
    expect(ppl[1]).toBeNaN(); // one token: nothing to predict
    expect(ppl[2]).toBeCloseTo(2, 5); // truncated to 6 tokens: five predictions of id 0 (p = 0.5)
    expect(ppl[3]).toBeCloseTo(8, 5);
    for (const c of calls) expect(c.batch * c.seq).toBeLessThanOrEqual(12);
    expect(calls.length).toBe(2); // [6,4] → 2 rows of 6; then [2] alone
  });

  it('mean-hidden embeddings pool only the real positions', () => {
    const { engine } = unigramEngine([0, 0, 0, 0], 4);
    const v = meanHiddenEmbeddings(engine, [Int32Array.from([1, 1, 1, 1, 1, 1]), Int32Array.from([2])], { maxTokens: 512, batchTokens: 64 });
    expect(Array.from(v[0])).toEqual([0, 1, 0, 0]);
    expect(Array.from(v[1])).toEqual([0, 0, 1, 0]); // padding (id 0) not pooled
  });
});

describe('POS entropy is a function of the text alone', () => {
  it('gives the same tags whatever the tagger read before (wink learns OOV words)', () => {
    const doc = 'Zyxcorp-Qwvbank said its zyxcorp-qwvbank unit, Blorfco, posted record blorfing revenue.';
    const fresh = wordPosTags(doc);
    for (const t of ['zyxcorp-qwvbank', 'Zyxcorp-Qwvbank and Blorfco blorfing', 'Blorfco blorfco BLORFCO']) wordPosTags(t);
    expect(wordPosTags(doc)).toEqual(fresh);
  });
});

describe('perplexity on the real tfjs engine (golden tiny GPT-NeoX)', () => {
  it('batched, padded scoring equals scoring each document alone via evalLoss', async () => {
    const { loadModel } = await import('../../src/model/load.js');
    const { createEngine } = await import('../../src/engine/index.js');
    const { dataDir } = await import('../../src/util/paths.js');
    const path = await import('node:path');
    const golden = path.join(dataDir(), '..', 'golden', 'neox-tiny');
    const m = await loadModel(golden);
    const engine = await createEngine('tfjs', m.config);
    try {
      engine.loadWeights(m.weights);
      const V = m.config.vocab_size;
      const docs = [17, 3, 9, 30, 1, 12].map((n, k) => Int32Array.from({ length: n }, (_, i) => (i * 37 + k * 101) % V));
      const ppl = perplexities(engine, docs, { maxTokens: 24, batchTokens: 64 });
      docs.forEach((d, i) => {
        const x = d.subarray(0, 24);
        if (x.length < 2) return expect(ppl[i]).toBeNaN();
        expect(Math.log(ppl[i])).toBeCloseTo(engine.evalLoss(x, 1, x.length), 4); // float32 loss: compare in log space
      });
    } finally {
      engine.dispose();
    }
  }, 60_000);
});

describe('transformers embedder', () => {
  it('refuses a missing model directory without downloading', async () => {
    const { transformersEmbed } = await import('../../src/select/scorers.js');
    await expect(transformersEmbed('/nonexistent/model-dir', 'r.yaml: selection.embedder')).rejects.toThrow(/not a transformers\.js model directory.*nothing is downloaded/);
    await expect(transformersEmbed(undefined, 'r.yaml: selection.embedder')).rejects.toThrow(/needs a local model directory/);
  });
});
