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
