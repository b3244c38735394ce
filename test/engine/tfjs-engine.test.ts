import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { createTfjsEngine } from '../../src/engine/tfjs/index.js';
import type { AdamWOptions, Engine, WeightMap } from '../../src/engine/engine.js';
import { paramSpecs, type NeoXConfig } from '../../src/model/config.js';
import { initWeights } from '../../src/model/init.js';
import { expectClose } from '../helpers/close.js';

const tiny = (over: Partial<NeoXConfig> = {}): NeoXConfig => ({
  hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, rotary_pct: 0.5,
  rotary_emb_base: 10000, max_position_embeddings: 64, vocab_size: 64, layer_norm_eps: 1e-5, hidden_act: 'gelu',
  use_parallel_residual: true, tie_word_embeddings: false, initializer_range: 0.02, bos_token_id: 0, eos_token_id: 0,
  ...over,
});

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  let s = seed;
  return Int32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) & 0x7fffffff), s % vocab));
}

async function engineWith(c: NeoXConfig, seed = 1): Promise<{ e: Engine; w: WeightMap }> {
  const e = await createTfjsEngine(c, {});
  const w = initWeights(c, seed);
  e.loadWeights(w);
  return { e, w };
}

const OPT: AdamWOptions = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 0.5 };

describe('tfjs engine behaviour', () => {
  it('names its backend', async () => {
    const { e } = await engineWith(tiny());
    expect(e.name).toMatch(/^tfjs-(cpu|tensorflow)$/);
    e.dispose();
  });

  it.each([['fused JS loop (cpu)', true], ['tensor ops (other backends)', false]])('AdamW matches a float64 reference: clipping, bias correction, decay on 2-D weights only — %s', async (_label, fusedAdamW) => {
    const c = tiny();
    const e = await createTfjsEngine(c, {}, { fusedAdamW });
    const w = initWeights(c, 1);
    e.loadWeights(w);
    const ids = randomIds(2 * 8, c.vocab_size, 3);
    const ref = new Map([...w].map(([n, a]) => [n, Float64Array.from(a)]));
    const m = new Map([...w].map(([n, a]) => [n, new Float64Array(a.length)]));
    const v = new Map([...w].map(([n, a]) => [n, new Float64Array(a.length)]));
    const decay = new Map(paramSpecs(c).map((s) => [s.name, s.decay]));
    for (let step = 1; step <= 2; step++) {
      e.trainStep(ids, 2, 8);
      const g = e.exportGrads();
      let sq = 0;
      for (const a of g.values()) for (const x of a) sq += x * x;
      const norm = Math.sqrt(sq);
      const { gradNorm } = e.applyAdamW(OPT);
      expect(gradNorm).toBeCloseTo(norm, 4);
      expect(norm).toBeGreaterThan(OPT.clip); // the clip path is exercised
      const k = OPT.clip / (norm + 1e-6);
      for (const [n, gr] of g) {
        const p = ref.get(n)!, mm = m.get(n)!, vv = v.get(n)!;
        for (let i = 0; i < p.length; i++) {
          const gi = gr[i] * k;
          mm[i] = OPT.beta1 * mm[i] + (1 - OPT.beta1) * gi;
          vv[i] = OPT.beta2 * vv[i] + (1 - OPT.beta2) * gi * gi;
          if (decay.get(n)) p[i] *= 1 - OPT.lr * OPT.weightDecay;
          p[i] -= (OPT.lr * (mm[i] / (1 - OPT.beta1 ** step))) / (Math.sqrt(vv[i] / (1 - OPT.beta2 ** step)) + OPT.eps);
        }
      }
      const after = e.exportWeights();
      for (const [n, p] of ref) expectClose(`step ${step} ${n}`, after.get(n)!, p, { atol: 1e-6, rtol: 1e-5 });
      expect(e.exportGrads().get('embed_out.weight')!.every((x) => x === 0)).toBe(true); // zeroed by the step
    }
    expect(e.exportOptimizer().step).toBe(2);
    e.dispose();
  });

  it('optimizer export/import resumes exactly', async () => {
    const c = tiny();
    const ids = randomIds(2 * 8, c.vocab_size, 5);
    const { e: a } = await engineWith(c);
    a.trainStep(ids, 2, 8);
    a.applyAdamW(OPT);
    const mid = { w: a.exportWeights(), opt: a.exportOptimizer() };
    a.trainStep(ids, 2, 8);
    a.applyAdamW(OPT);
    const b = await createTfjsEngine(c, {});
    b.loadWeights(mid.w);
    b.importOptimizer(mid.opt);
    b.trainStep(ids, 2, 8);
    b.applyAdamW(OPT);
    const wa = a.exportWeights(), wb = b.exportWeights();
    for (const [n, x] of wa) expectClose(n, wb.get(n)!, x, { atol: 0 });
    expect(b.exportOptimizer().step).toBe(2);
    a.dispose();
    b.dispose();
  });

  it('training on a fixed batch lowers the loss', async () => {
    const c = tiny();
    const { e } = await engineWith(c);
    const ids = randomIds(2 * 8, c.vocab_size, 9);
    const first = e.evalLoss(ids, 2, 8);
    for (let i = 0; i < 5; i++) {
      e.trainStep(ids, 2, 8);
      e.applyAdamW({ ...OPT, clip: 1 });
    }
    expect(e.evalLoss(ids, 2, 8)).toBeLessThan(first - 0.5);
    e.dispose();
  });

  it('keeps the live tensor count constant across steps (no leaks)', async () => {
    const c = tiny();
    const { e } = await engineWith(c);
    const ids = randomIds(2 * 8, c.vocab_size, 7);
    const cycle = () => {
      e.trainStep(ids, 2, 8, 0.5);
      e.trainStep(ids, 2, 8, 0.5);
      e.applyAdamW(OPT);
      e.evalLoss(ids, 2, 8);
      e.logits(ids, 2, 8);
      e.tokenLogprobs(ids, 2, 8);
      e.meanHidden(ids, 2, 8, Int32Array.from([8, 3]));
      e.exportWeights();
      e.exportGrads();
      e.importOptimizer(e.exportOptimizer());
      e.loadWeights(e.exportWeights());
      e.zeroGrads();
    };
    cycle();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) cycle();
    expect(tf.memory().numTensors).toBe(before);
    e.dispose();
    expect(tf.memory().numTensors).toBe(before - 4 * paramSpecs(c).length);
  });

  it('meanHidden averages only the first lengths[b] positions (causality makes later tokens irrelevant)', async () => {
    const c = tiny();
    const { e } = await engineWith(c);
    const ids = randomIds(2 * 8, c.vocab_size, 11);
    const full = e.meanHidden(ids, 2, 8, Int32Array.from([8, 3]));
    expect(full.length).toBe(2 * c.hidden_size);
    // Row 1 truncated to its first 3 tokens gives the same mean.
    const short = e.meanHidden(ids.slice(8, 11), 1, 3, Int32Array.from([3]));
    expectClose('row 1', full.subarray(c.hidden_size), short, { atol: 1e-5 });
    // A change after position 3 leaves row 1's mean unchanged; a change before it does not.
    const later = ids.slice(); later[8 + 5] = (later[8 + 5] + 1) % c.vocab_size;
    expectClose('row 1 (later token changed)', e.meanHidden(later, 2, 8, Int32Array.from([8, 3])).subarray(c.hidden_size), short, { atol: 1e-5 });
    const earlier = ids.slice(); earlier[8 + 1] = (earlier[8 + 1] + 1) % c.vocab_size;
    const moved = e.meanHidden(earlier, 2, 8, Int32Array.from([8, 3])).subarray(c.hidden_size);
    expect(Math.max(...moved.map((x, i) => Math.abs(x - short[i])))).toBeGreaterThan(1e-3);
    expect(() => e.meanHidden(ids, 2, 8, Int32Array.from([8, 9]))).toThrow(/lengths\[1\]/);
    e.dispose();
  });

  it('tokenLogprobs are log-probabilities consistent with logits', async () => {
    const c = tiny();
    const { e } = await engineWith(c);
    const ids = randomIds(1 * 6, c.vocab_size, 13);
    const lg = e.logits(ids, 1, 6), lp = e.tokenLogprobs(ids, 1, 6);
    const V = c.vocab_size;
    for (let t = 0; t < 5; t++) {
      const row = lg.subarray(t * V, (t + 1) * V);
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
      expect(lp[t]).toBeCloseTo(row[ids[t + 1]] - lse, 4);
    }
    e.dispose();
  });

  it('sequential residual, tanh GELU and tied embeddings run, give finite values, and differ from the default', async () => {
    const c = tiny();
    const ids = randomIds(2 * 8, c.vocab_size, 17);
    const { e: base } = await engineWith(c);
    const ref = base.evalLoss(ids, 2, 8);
    base.dispose();
    for (const over of [{ use_parallel_residual: false }, { hidden_act: 'gelu_new' }, { tie_word_embeddings: true }, { rotary_pct: 1 }]) {
      const { e } = await engineWith(tiny(over));
      const loss = e.trainStep(ids, 2, 8);
      expect(Number.isFinite(loss)).toBe(true);
      expect(Math.abs(loss - ref)).toBeGreaterThan(1e-6);
      const { gradNorm } = e.applyAdamW(OPT);
      expect(Number.isFinite(gradNorm) && gradNorm > 0).toBe(true);
      expect([...e.exportWeights().values()].every((a) => a.every(Number.isFinite))).toBe(true);
      e.dispose();
    }
  });

  it('rejects out-of-vocabulary ids and mismatched shapes', async () => {
    const c = tiny();
    const { e } = await engineWith(c);
    expect(() => e.logits(Int32Array.from([1, 2, 64]), 1, 3)).toThrow(/token id 64/);
    expect(() => e.logits(Int32Array.from([1, 2, 3]), 1, 4)).toThrow(/3 ids/);
    expect(() => e.loadWeights(new Map())).toThrow(/lack "gpt_neox.embed_in.weight"/);
    e.dispose();
  });
});
