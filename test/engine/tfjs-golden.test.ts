import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createTfjsEngine } from '../../src/engine/tfjs/index.js';
import type { Engine } from '../../src/engine/engine.js';
import { loadGolden, goldenDir, VARIANT_DIR, type Golden } from '../helpers/golden.js';
import { expectClose } from '../helpers/close.js';

// Independent PyTorch values (test/helpers/golden.ts); tolerances from the fixture's README.
// neox-tiny is Pythia's architecture; the variant covers sequential residual, tanh GELU, tied
// embeddings and a wider rotary fraction.
describe.each([
  ['neox-tiny (Pythia: parallel residual, erf GELU, untied)', goldenDir()],
  ['neox-tiny-variant (sequential residual, gelu_new, tied, rotary 0.5)', VARIANT_DIR],
])('tfjs engine vs PyTorch golden: %s', (_label, dir) => {
  let g: Golden;
  let e: Engine;
  beforeAll(async () => {
    g = loadGolden(dir);
    e = await createTfjsEngine(g.config, {});
    e.loadWeights(g.weights);
  });
  afterAll(() => e?.dispose());

  it('logits match within 1e-4', () => {
    expectClose('logits', e.logits(g.ids, g.batch, g.seq), g.logits, { atol: 1e-4 });
  });

  it('loss matches within 1e-5 (evalLoss and trainStep), and tokenLogprobs agree with it', () => {
    expect(Math.abs(e.evalLoss(g.ids, g.batch, g.seq) - g.loss)).toBeLessThan(1e-5);
    const lp = e.tokenLogprobs(g.ids, g.batch, g.seq);
    expect(lp.length).toBe(g.batch * (g.seq - 1));
    const mean = -lp.reduce((a, b) => a + b, 0) / lp.length;
    expect(Math.abs(mean - g.loss)).toBeLessThan(1e-5);
  });

  it('every gradient matches within 1e-4 of its max magnitude', () => {
    e.zeroGrads();
    const loss = e.trainStep(g.ids, g.batch, g.seq);
    expect(Math.abs(loss - g.loss)).toBeLessThan(1e-5);
    const grads = e.exportGrads();
    expect([...grads.keys()].sort()).toEqual([...g.grads.keys()].sort());
    for (const [name, expected] of g.grads) expectClose(`grad ${name}`, grads.get(name)!, expected, { rtol: 1e-4, relativeToMax: true });
  });

  it('gradient accumulation: two half-scaled steps on the same batch equal one full step', () => {
    e.zeroGrads();
    e.trainStep(g.ids, g.batch, g.seq, 0.5);
    e.trainStep(g.ids, g.batch, g.seq, 0.5);
    const grads = e.exportGrads();
    for (const [name, expected] of g.grads) expectClose(`accumulated ${name}`, grads.get(name)!, expected, { rtol: 1e-4, relativeToMax: true });
    e.zeroGrads();
    expect(e.exportGrads().get('gpt_neox.embed_in.weight')!.every((x) => x === 0)).toBe(true);
  });

  it('F16-stored weights reproduce logits_from_f16_weights', () => {
    e.loadWeights(g.f16Weights);
    try {
      expectClose('logits (f16 weights)', e.logits(g.ids, g.batch, g.seq), g.logitsF16, { atol: 1e-4 });
    } finally {
      e.loadWeights(g.weights);
    }
  });
});
