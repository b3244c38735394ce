import { describe, it, expect } from 'vitest';
import { loadGolden } from '../helpers/golden.js';
import { expectClose } from '../helpers/close.js';
import { createNativeEngine, nativeStatus } from '../../src/engine/native/index.js';
import { supportsKernel } from './fixtures.js';

const st = nativeStatus();
const supported = { scalar: await supportsKernel('scalar'), avx2: await supportsKernel('avx2') };

describe.skipIf(!st.ok)('native engine vs PyTorch golden (neox-tiny)', () => {
  for (const kernel of ['auto', 'avx2', 'scalar'] as const) {
    it.skipIf(kernel !== 'auto' && !supported[kernel])(`logits, loss and every gradient (${kernel} kernel)`, () => {
      const g = loadGolden();
      const e = createNativeEngine(g.config, { threads: 2, kernel });
      e.loadWeights(g.weights);
      expectClose('logits', e.logits(g.ids, g.batch, g.seq), g.logits, { atol: 1e-4 });
      expect(Math.abs(e.evalLoss(g.ids, g.batch, g.seq) - g.loss)).toBeLessThan(1e-5);
      e.zeroGrads();
      const loss = e.trainStep(g.ids, g.batch, g.seq, 1);
      expect(Math.abs(loss - g.loss)).toBeLessThan(1e-5);
      const grads = e.exportGrads();
      for (const [name, want] of g.grads) expectClose(`grad.${name}`, grads.get(name)!, want, { rtol: 1e-4, relativeToMax: true });
      e.dispose();
    });
  }
});

it('reports whether the addon is available', () => {
  expect(typeof st.ok).toBe('boolean');
  if (!st.ok) expect(st.reason).toBeTruthy();
});
