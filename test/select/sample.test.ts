import { describe, expect, it } from 'vitest';
import {
  budgetTokens,
  hardOrder,
  meanColumns,
  percentileRanks,
  rankWeights,
  sampleByScore,
  softOrder,
  takeBudget,
  type ScoreColumns,
} from '../../src/select/sample.js';
import { Rng } from '../../src/select/prng.js';

function cols(n: number, seed = 1): ScoreColumns {
  const r = new Rng(seed);
  return {
    ids: Array.from({ length: n }, (_, i) => `doc-${String(i).padStart(4, '0')}`),
    tokens: Int32Array.from({ length: n }, () => 1 + Math.floor(r.uniform() * 500)),
    scores: {
      similarity: Float64Array.from({ length: n }, () => r.uniform()),
      perplexity: Float64Array.from({ length: n }, () => Math.exp(2 + 3 * r.uniform())),
      entropy: Float64Array.from({ length: n }, () => 4 * r.uniform()),
    },
  };
}

describe('prng', () => {
  it('is deterministic per seed, in (0,1), and roughly uniform', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xa = Array.from({ length: 1000 }, () => a.uniform());
    expect(Array.from({ length: 1000 }, () => b.uniform())).toEqual(xa);
    expect(Array.from({ length: 1000 }, () => c.uniform())).not.toEqual(xa);
    expect(Math.min(...xa)).toBeGreaterThan(0);
    expect(Math.max(...xa)).toBeLessThan(1);
    const mean = xa.reduce((s, x) => s + x, 0) / xa.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.03); // sd of the mean ≈ 0.009
  });
});

describe('percentileRanks', () => {
  it('ranks higher scores higher, shares tied ranks, gives NaN rank 0', () => {
    const r = percentileRanks([3, 1, NaN, 3, 2]);
    // finite: 1 (rank 1), 2 (rank 2), 3, 3 (ranks 3,4 → 3.5); m = 4
    expect(Array.from(r)).toEqual([3.5 / 4, 1 / 4, 0, 3.5 / 4, 2 / 4]);
  });
  it('rankWeights sharpens with lower temperature', () => {
    const w1 = rankWeights([1, 2, 3, 4], 1);
    const w05 = rankWeights([1, 2, 3, 4], 0.5);
    expect(Array.from(w1)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(w05[0]).toBeCloseTo(0.0625, 12);
    expect(() => rankWeights([1], 0)).toThrow(/temperature/);
  });
});

describe('hard sampling', () => {
  it('orders by decreasing score, ties by id, NaN last', () => {
    const o = hardOrder([0.5, NaN, 0.9, 0.5], ['d', 'a', 'c', 'b']);
    expect(Array.from(o)).toEqual([2, 3, 0, 1]);
  });

  it('meets the budget within one document', () => {
    const c = cols(2000);
    for (const f of [0.01, 0.1, 0.37, 1]) {
      const r = sampleByScore(c, { sampling: 'hard', metrics: ['similarity'], budgetFraction: f, temperature: 1, seed: 1 });
      expect(r.budget).toBe(budgetTokens(f, r.corpusTokens));
      expect(r.selectedTokens).toBeGreaterThanOrEqual(r.budget);
      const last = c.tokens[r.indices[r.indices.length - 1]];
      expect(r.selectedTokens - last).toBeLessThan(r.budget); // dropping the last doc falls short
      // Everything chosen scores at least as high as everything left.
      const chosen = new Set(r.indices);
      let minIn = Infinity, maxOut = -Infinity;
      for (let i = 0; i < 2000; i++) {
        if (chosen.has(i)) minIn = Math.min(minIn, c.scores.similarity[i]);
        else maxOut = Math.max(maxOut, c.scores.similarity[i]);
      }
      if (f < 1) expect(minIn).toBeGreaterThanOrEqual(maxOut);
    }
  });

  it('takes everything when the budget exceeds the corpus', () => {
    expect(Array.from(takeBudget(Int32Array.from([2, 0, 1]), [5, 5, 5], 100))).toEqual([2, 0, 1]);
    expect(Array.from(takeBudget(Int32Array.from([2, 0, 1]), [5, 5, 5], 6))).toEqual([2, 0]);
    expect(Array.from(takeBudget(Int32Array.from([2, 0, 1]), [5, 5, 5], 5))).toEqual([2]);
  });

  it('ETS-DACP-com ranks by the mean of the metrics\' percentile ranks', () => {
    const c: ScoreColumns = {
      ids: ['a', 'b', 'c'],
      tokens: [1, 1, 1],
      scores: {
        similarity: Float64Array.from([0.9, 0.1, 0.5]), // ranks 1, 1/3, 2/3
        perplexity: Float64Array.from([10, 1000, 20]), // ranks 1/3, 1, 2/3
        entropy: Float64Array.from([1, 3, 2]), // ranks 1/3, 1, 2/3
      },
    };
    const r = sampleByScore(c, { sampling: 'hard', metrics: ['similarity', 'perplexity', 'entropy'], budgetFraction: 1 / 3, temperature: 1, seed: 1 });
    // means: a 5/9, b 7/9, c 6/9 → b first
    expect(Array.from(r.indices)).toEqual([1]);
    expect(r.priority[0]).toBeCloseTo(5 / 9, 12);
  });
});

describe('soft sampling', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const c = cols(3000);
    const o = { sampling: 'soft' as const, metrics: ['entropy' as const], budgetFraction: 0.1, temperature: 1 };
    const a = sampleByScore(c, { ...o, seed: 5 }).indices;
    expect(Array.from(sampleByScore(c, { ...o, seed: 5 }).indices)).toEqual(Array.from(a));
    expect(Array.from(sampleByScore(c, { ...o, seed: 6 }).indices)).not.toEqual(Array.from(a));
  });

  it('never draws a document twice and never draws weight-0 documents', () => {
    const w = Float64Array.from({ length: 500 }, (_, i) => (i % 7 === 0 ? 0 : (i % 13) + 1));
    const o = softOrder(w, 3);
    expect(new Set(o).size).toBe(o.length);
    expect(o.length).toBe(w.filter((x) => x > 0).length);
    for (const i of o) expect(w[i]).toBeGreaterThan(0);
  });

  it('first draws follow the weights (chi-square, 20k seeded draws, p < 0.001 bound)', () => {
    const w = [1, 2, 3, 4, 10];
    const W = w.reduce((s, x) => s + x, 0);
    const N = 20000;
    const counts = new Array(w.length).fill(0);
    for (let s = 0; s < N; s++) counts[softOrder(w, 1000 + s)[0]]++;
    let chi2 = 0;
    for (let i = 0; i < w.length; i++) {
      const e = (N * w[i]) / W;
      chi2 += (counts[i] - e) ** 2 / e;
    }
    expect(chi2).toBeLessThan(18.47); // chi-square, 4 dof, p = 0.001
  });

  it('inclusion in the first two draws matches the exact without-replacement probability (±4σ)', () => {
    const w = [1, 2, 3, 4, 10];
    const W = w.reduce((s, x) => s + x, 0);
    // P(i in first 2) = p_i + Σ_{j≠i} p_j · w_i / (W − w_j)
    const exact = w.map((wi, i) => wi / W + w.reduce((s, wj, j) => (j === i ? s : s + (wj / W) * (wi / (W - wj))), 0));
    const N = 20000;
    const hits = new Array(w.length).fill(0);
    for (let s = 0; s < N; s++) {
      const o = softOrder(w, 50_000 + s);
      hits[o[0]]++;
      hits[o[1]]++;
    }
    for (let i = 0; i < w.length; i++) {
      const sd = Math.sqrt((exact[i] * (1 - exact[i])) / N);
      expect(Math.abs(hits[i] / N - exact[i])).toBeLessThan(4 * sd);
    }
  });

  it('prefers high scores: the soft selection\'s mean rank is above the corpus mean', () => {
    const c = cols(5000);
    const r = sampleByScore(c, { sampling: 'soft', metrics: ['perplexity'], budgetFraction: 0.1, temperature: 0.25, seed: 9 });
    const ranks = percentileRanks(c.scores.perplexity);
    const mean = Array.from(r.indices).reduce((s, i) => s + ranks[i], 0) / r.indices.length;
    // weights r^4: E[rank] under ∝ r^4 sampling is 5/6 for early draws
    expect(mean).toBeGreaterThan(0.75);
    expect(r.selectedTokens).toBeGreaterThanOrEqual(r.budget);
  });

  it('ETS-DACP-com soft weights are the mean of the metrics\' weights', () => {
    const c = cols(50);
    const r = sampleByScore(c, { sampling: 'soft', metrics: ['similarity', 'entropy'], budgetFraction: 0.5, temperature: 2, seed: 1 });
    const expected = meanColumns([rankWeights(c.scores.similarity, 2), rankWeights(c.scores.entropy, 2)]);
    expect(Array.from(r.priority)).toEqual(Array.from(expected));
  });
});
