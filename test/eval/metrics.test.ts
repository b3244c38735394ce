import { describe, expect, it } from 'vitest';
import { bootstrapStderr, entityF1, meanStderr, perplexity, pickChoice, weightedF1, choiceLikelihoods, mean } from '../../src/eval/metrics.js';

describe('metrics (hand-computed)', () => {
  it('weighted F1 weights per-label F1 by gold support (sklearn average="weighted")', () => {
    // label 0: tp1 fp1 fn1 → 0.5 (support 2); label 1: tp2 fp1 → 0.8 (support 2); label 2: 0 (support 1)
    expect(weightedF1([0, 0, 1, 1, 2], [0, 1, 1, 1, 0])).toBeCloseTo((0.5 * 2 + 0.8 * 2 + 0) / 5, 12);
    expect(weightedF1([1, 1, 1], [1, 1, 1])).toBe(1);
    // A label only predicted (never gold) has zero weight but its false positives hurt label 0's F1.
    // label 0: tp1 fn1 → 2/3 (support 2); label 1: tp 1 → 1 (support 1); label 2: weight 0
    expect(weightedF1([0, 0, 1], [0, 2, 1])).toBeCloseTo(((2 / 3) * 2 + 1) / 3, 12);
  });

  it('entity F1 counts exact span+type matches only', () => {
    const g = [
      { group: 's1', start: 0, end: 2, type: 'person' },
      { group: 's1', start: 5, end: 6, type: 'location' },
      { group: 's2', start: 1, end: 3, type: 'organization' },
    ];
    const p = [
      { group: 's1', start: 0, end: 2, type: 'person' }, // hit
      { group: 's1', start: 5, end: 6, type: 'organization' }, // wrong type
      { group: 's2', start: 1, end: 3, type: 'organization' }, // hit
      { group: 's2', start: 1, end: 2, type: 'organization' }, // wrong span
    ];
    const r = entityF1(g, p);
    expect(r.precision).toBeCloseTo(2 / 4, 12);
    expect(r.recall).toBeCloseTo(2 / 3, 12);
    expect(r.f1).toBeCloseTo((2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3), 12);
    expect(entityF1(g, []).f1).toBe(0);
  });

  it('acc_norm divides the log-likelihood by the choice length in characters', () => {
    // raw: -4 > -5 → choice 0; per char: -4/2 = -2 < -5/6 → choice 1
    expect(pickChoice([-4, -5], ['ab', 'abcdef'])).toEqual({ pred: 0, predNorm: 1 });
  });

  it('ties count as wrong: a model that cannot tell the choices apart gets no credit', () => {
    expect(pickChoice([-3, -3], ['a', 'b'])).toEqual({ pred: -1, predNorm: -1 });
    expect(pickChoice([-3, -3, -1], ['a', 'b', 'c'])).toEqual({ pred: 2, predNorm: 2 }); // a tie below the best is fine
    expect(pickChoice([-2, -4], ['ab', 'abcd'])).toEqual({ pred: 0, predNorm: -1 }); // -1 per char each
    // so accuracy over [tie, right] is 0.5, where first-on-ties would give 1 when gold is 0
    const gold = [0, 0];
    const acc = [pickChoice([-3, -3], ['a', 'b']), pickChoice([-1, -3], ['a', 'b'])].map((p, i) => (p.pred === gold[i] ? 1 : 0));
    expect(mean(acc)).toBe(0.5);
  });

  it('continuous metrics: gold log-likelihood and the probability margin over the best wrong choice', () => {
    // lls ln(.5), ln(.3), ln(.2) over three choices; gold 1: margin .3 - .5 = -.2
    const c = choiceLikelihoods([Math.log(0.5), Math.log(0.3), Math.log(0.2)], ['ab', 'ab', 'ab'], 1);
    expect(c.goldLogprob).toBeCloseTo(Math.log(0.3), 12);
    expect(c.margin).toBeCloseTo(-0.2, 12);
    // gold 0: .5 - .3; renormalised over the choices whatever their total mass
    expect(choiceLikelihoods([Math.log(0.05), Math.log(0.03), Math.log(0.02)], ['a', 'a', 'a'], 0).margin).toBeCloseTo(0.2, 12);
    // _norm divides by characters first: -2/2 = -1 vs -3/1 = -3 → p ∝ e^-1, e^-3
    const n = choiceLikelihoods([-2, -3], ['ab', 'c'], 0);
    expect(n.goldLogprobNorm).toBe(-1);
    const p0 = Math.exp(-1) / (Math.exp(-1) + Math.exp(-3));
    expect(n.marginNorm).toBeCloseTo(p0 - (1 - p0), 12);
    expect(n.margin).toBeCloseTo(Math.exp(-2) / (Math.exp(-2) + Math.exp(-3)) * 2 - 1, 12);
  });

  it('stderr of a mean is the sample standard deviation over sqrt(n)', () => {
    // mean .75, sample variance (3·.0625 + .5625)/3 = .25 → sd .5 → .5/2
    expect(meanStderr([1, 0, 1, 1])).toBeCloseTo(0.25, 12);
    expect(meanStderr([1])).toBeNaN();
  });

  it('perplexity is exp(-mean log-likelihood)', () => {
    expect(perplexity([-1, -3])).toBeCloseTo(Math.exp(2), 12);
  });

  it('bootstrap stderr of a mean approaches the analytic stderr and is seeded', () => {
    const xs = Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const stat = (idx: Int32Array) => idx.reduce((s, i) => s + xs[i]!, 0) / idx.length;
    const b = bootstrapStderr(xs.length, stat, 2000, 7);
    expect(b).toBeCloseTo(meanStderr(xs), 2);
    expect(bootstrapStderr(xs.length, stat, 2000, 7)).toBe(b);
  });
});
