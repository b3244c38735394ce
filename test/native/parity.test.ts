// Native vs the tfjs reference engine on small random configs covering every architectural switch.
import { describe, it, expect } from 'vitest';
import { createEngine } from '../../src/engine/index.js';
import { createNativeEngine, nativeStatus } from '../../src/engine/native/index.js';
import { initWeights } from '../../src/model/init.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { expectClose } from '../helpers/close.js';
import { tinyConfig, randomIds } from './fixtures.js';

const cases: [string, Partial<NeoXConfig>][] = [
  ['parallel, rotary 0.25, untied', {}],
  ['sequential, rotary 0.5, tied', { use_parallel_residual: false, rotary_pct: 0.5, tie_word_embeddings: true }],
  ['parallel, rotary 1.0, tied, gelu_new', { rotary_pct: 1.0, tie_word_embeddings: true, hidden_act: 'gelu_new' }],
  ['sequential, rotary 0 (none), untied', { use_parallel_residual: false, rotary_pct: 0 }],
  ['parallel, a vocabulary of 5000 (three LM-head blocks of 2048, the last ragged)', { vocab_size: 5000 }],
];

describe.skipIf(!nativeStatus().ok)('native vs tfjs engine', () => {
  for (const [label, o] of cases) {
    it(label, async () => {
      const c = tinyConfig(o);
      const w = initWeights(c, 7);
      const B = 2, T = 9;
      const ids = randomIds(B * T, c.vocab_size, 3);
      const ref = await createEngine('tfjs', c);
      const nat = createNativeEngine(c, { threads: 2 });
      try {
        ref.loadWeights(w);
        nat.loadWeights(w);
        expectClose('logits', nat.logits(ids, B, T), ref.logits(ids, B, T), { atol: 1e-4 });
        expectClose('tokenLogprobs', nat.tokenLogprobs(ids, B, T), ref.tokenLogprobs(ids, B, T), { atol: 1e-4 });
        const lengths = Int32Array.from([T, 4]);
        expectClose('meanHidden', nat.meanHidden(ids, B, T, lengths), ref.meanHidden(ids, B, T, lengths), { atol: 1e-4 });
        expect(nat.evalLoss(ids, B, T)).toBeCloseTo(ref.evalLoss(ids, B, T), 5);
        ref.zeroGrads();
        nat.zeroGrads();
        expect(nat.trainStep(ids, B, T, 0.5)).toBeCloseTo(ref.trainStep(ids, B, T, 0.5), 5);
        const gr = ref.exportGrads(), gn = nat.exportGrads();
        expect([...gn.keys()]).toEqual([...gr.keys()]);
        for (const [name, want] of gr) expectClose(`grad.${name}`, gn.get(name)!, want, { atol: 1e-7, rtol: 1e-4, relativeToMax: true });
      } finally {
        ref.dispose();
        nat.dispose();
      }
    });
  }
});

// Scoring takes the LM head by vocabulary blocks and row chunks (the logits never exist whole);
// training's loss takes whole rows. On 600 rows (three chunks, the last ragged) and a vocabulary
// of three blocks, both give the same loss, and the token log-probs are that loss's terms.
// Scoring also keeps one layer's activations (the residual stream alternating between two
// buffers), training every layer's: three layers, so the last one reads the first buffer.
describe.skipIf(!nativeStatus().ok)('native LM head: scoring by blocks against training\'s whole rows', () => {
  for (const [threads, layers] of [[1, 2], [2, 2], [2, 3]]) {
    it(`${threads} thread${threads > 1 ? 's' : ''}, ${layers} layers`, () => {
      const c = tinyConfig({ vocab_size: 5000, num_hidden_layers: layers });
      const B = 2, T = 300;
      const ids = randomIds(B * T, c.vocab_size, 5);
      const nat = createNativeEngine(c, { threads });
      try {
        nat.loadWeights(initWeights(c, 9));
        const scored = nat.evalLoss(ids, B, T);
        const lp = nat.tokenLogprobs(ids, B, T);
        expect(lp.length).toBe(B * (T - 1));
        expect(-lp.reduce((a, x) => a + x, 0) / lp.length).toBeCloseTo(scored, 5);
        nat.zeroGrads();
        expect(nat.trainStep(ids, B, T, 1)).toBeCloseTo(scored, 5);
      } finally {
        nat.dispose();
      }
    });
  }
});

// Packed weights are kept between calls (the LM head; with bf16 every layer's too): they must
// follow every change of the weights.
const hasBf16 = nativeStatus().ok && (() => {
  const e = createNativeEngine(tinyConfig(), { threads: 1, precision: 'bf16' });
  const p = e.precision;
  e.dispose();
  return p === 'bf16';
})();
describe.skipIf(!nativeStatus().ok)('native packed weights: packed once, repacked when the weights change', () => {
  it.each(['fp32', 'bf16'] as const)('%s: after an AdamW step and after new weights are loaded, scoring equals a fresh engine\'s', (precision) => {
    if (precision === 'bf16' && !hasBf16) return;
    const c = tinyConfig({ vocab_size: 3000 });
    const B = 2, T = 40;
    const ids = randomIds(B * T, c.vocab_size, 8);
    const fresh = (w: ReturnType<typeof initWeights>) => {
      const e = createNativeEngine(c, { threads: 2, precision });
      e.loadWeights(w);
      const l = e.evalLoss(ids, B, T);
      e.dispose();
      return l;
    };
    const nat = createNativeEngine(c, { threads: 2, precision });
    try {
      nat.loadWeights(initWeights(c, 1));
      const first = nat.evalLoss(ids, B, T);
      nat.zeroGrads();
      nat.trainStep(ids, B, T, 1);
      nat.applyAdamW({ lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1 });
      const stepped = nat.evalLoss(ids, B, T);
      expect(stepped).not.toBe(first);
      expect(stepped).toBe(fresh(nat.exportWeights()));
      const other = initWeights(c, 2);
      nat.loadWeights(other);
      expect(nat.evalLoss(ids, B, T)).toBe(fresh(other));
    } finally {
      nat.dispose();
    }
  });
});
