// AdamW + clipping against a plain-TS reference, gradient accumulation, optimizer state round trip.
import { describe, it, expect } from 'vitest';
import { createNativeEngine, nativeStatus } from '../../src/engine/native/index.js';
import { initWeights } from '../../src/model/init.js';
import { paramSpecs } from '../../src/model/config.js';
import type { AdamWOptions, WeightMap } from '../../src/engine/engine.js';
import { expectClose } from '../helpers/close.js';
import { tinyConfig, randomIds } from './fixtures.js';

/** torch.optim.AdamW after torch.nn.utils.clip_grad_norm_, in float64. */
function referenceAdamW(w: WeightMap, g: WeightMap, m: WeightMap, v: WeightMap, step: number, o: AdamWOptions, decay: Map<string, boolean>) {
  let sq = 0;
  for (const t of g.values()) for (const x of t) sq += x * x;
  const norm = Math.sqrt(sq);
  const coef = o.clip > 0 ? Math.min(1, o.clip / (norm + 1e-6)) : 1;
  const bc1 = 1 - o.beta1 ** step, bc2 = 1 - o.beta2 ** step;
  for (const [name, p] of w) {
    const gt = g.get(name)!, mt = m.get(name)!, vt = v.get(name)!;
    for (let i = 0; i < p.length; i++) {
      const gi = gt[i] * coef;
      let pi = p[i];
      if (decay.get(name)) pi *= 1 - o.lr * o.weightDecay;
      mt[i] = o.beta1 * mt[i] + (1 - o.beta1) * gi;
      vt[i] = o.beta2 * vt[i] + (1 - o.beta2) * gi * gi;
      p[i] = pi - (o.lr / bc1) * mt[i] / (Math.sqrt(vt[i]) / Math.sqrt(bc2) + o.eps);
    }
  }
  return norm;
}

describe.skipIf(!nativeStatus().ok)('native AdamW', () => {
  it('two clipped AdamW steps match the plain-TS reference; grads are zeroed', () => {
    const c = tinyConfig();
    const e = createNativeEngine(c, { threads: 2 });
    e.loadWeights(initWeights(c, 1));
    const o: AdamWOptions = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 0.5 };
    const decay = new Map(paramSpecs(c).map((s) => [s.name, s.decay]));
    const w = e.exportWeights();
    const zeros = () => new Map([...w].map(([k, t]) => [k, new Float32Array(t.length)]));
    const m = zeros(), v = zeros();
    for (let step = 1; step <= 2; step++) {
      e.trainStep(randomIds(2 * 8, c.vocab_size, step), 2, 8);
      const g = e.exportGrads();
      const want = referenceAdamW(w, g, m, v, step, o, decay);
      expect(want).toBeGreaterThan(o.clip); // clipping is exercised
      const { gradNorm } = e.applyAdamW(o);
      expect(gradNorm).toBeCloseTo(want, 4);
      const got = e.exportWeights();
      for (const [name, p] of w) expectClose(`step ${step} ${name}`, got.get(name)!, p, { atol: 1e-6, rtol: 1e-5 });
      for (const [name, t] of e.exportGrads()) expect(t.every((x) => x === 0), `${name} zeroed`).toBe(true);
    }
    const s = e.exportOptimizer();
    expect(s.step).toBe(2);
    for (const [name, t] of m) expectClose(`m ${name}`, s.m.get(name)!, t, { atol: 1e-9, rtol: 1e-5 });
    e.dispose();
  });

  it('gradient accumulation: two half-scaled micro-batches equal the mean of their gradients', () => {
    const c = tinyConfig({ tie_word_embeddings: true });
    const e = createNativeEngine(c, { threads: 2 });
    e.loadWeights(initWeights(c, 2));
    const a = randomIds(16, c.vocab_size, 11), b = randomIds(16, c.vocab_size, 12);
    e.trainStep(a, 2, 8, 1);
    const ga = e.exportGrads();
    e.zeroGrads();
    e.trainStep(b, 2, 8, 1);
    const gb = e.exportGrads();
    e.zeroGrads();
    e.trainStep(a, 2, 8, 0.5);
    e.trainStep(b, 2, 8, 0.5);
    for (const [name, t] of e.exportGrads()) {
      const want = ga.get(name)!.map((x, i) => (x + gb.get(name)![i]) / 2);
      expectClose(name, t, want, { atol: 1e-7, rtol: 1e-5, relativeToMax: true });
    }
    e.dispose();
  });

  it('optimizer state survives export/import into a fresh engine (same next step)', () => {
    const c = tinyConfig();
    const o: AdamWOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clip: 1 };
    const ids = randomIds(16, c.vocab_size, 5);
    const a = createNativeEngine(c, { threads: 1 });
    a.loadWeights(initWeights(c, 3));
    a.trainStep(ids, 2, 8);
    a.applyAdamW(o);
    const b = createNativeEngine(c, { threads: 1 });
    b.loadWeights(a.exportWeights());
    b.importOptimizer(a.exportOptimizer());
    for (const e of [a, b]) {
      e.trainStep(ids, 2, 8);
      e.applyAdamW(o);
    }
    const wa = a.exportWeights(), wb = b.exportWeights();
    for (const [name, t] of wa) expect(Buffer.from(wb.get(name)!.buffer).equals(Buffer.from(t.buffer)), name).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('rejects bad input with a clear message', () => {
    const c = tinyConfig();
    const e = createNativeEngine(c, { threads: 1 });
    expect(() => e.logits(Int32Array.from([1, 2, 300]), 1, 3)).toThrow(/token id 300 at index 2 is outside the vocabulary \[0, 97\)/);
    expect(() => e.logits(Int32Array.from([1, 2]), 1, 3)).toThrow(/ids length 2 != batch \* seq = 3/);
    expect(() => e.loadWeights(new Map())).toThrow(/missing tensor "gpt_neox.embed_in.weight"/);
    e.dispose();
    expect(() => e.evalLoss(Int32Array.from([1, 2]), 1, 2)).toThrow(/after dispose/);
  });
});
