// Bitwise determinism for a fixed thread count (and of scoring across thread counts), the scalar fallback against the vector path,
// and flat memory over 1000 training steps.
import { describe, it, expect } from 'vitest';
import { createNativeEngine, nativeStatus, type NativeKernel } from '../../src/engine/native/index.js';
import { initWeights } from '../../src/model/init.js';
import { expectClose } from '../helpers/close.js';
import { adamw, tinyConfig, randomIds, supportsKernel, trainScenario } from './fixtures.js';

const run = (threads: number, kernel: NativeKernel) => trainScenario({ threads, kernel });

const supported = { scalar: await supportsKernel('scalar'), avx2: await supportsKernel('avx2') };
const bits = (t: Float32Array) => Buffer.from(t.buffer, t.byteOffset, t.byteLength);

describe.skipIf(!nativeStatus().ok)('native determinism and kernels', () => {
  for (const threads of [1, 2]) {
    it(`two runs are bitwise equal (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      const a = await run(threads, 'auto'), b = await run(threads, 'auto');
      expect(b.loss).toBe(a.loss);
      expect(bits(b.lp).equals(bits(a.lp))).toBe(true);
      for (const [name, t] of a.w) expect(bits(b.w.get(name)!).equals(bits(t)), `weights ${name}`).toBe(true);
      for (const [name, t] of a.g) expect(bits(b.g.get(name)!).equals(bits(t)), `grads ${name}`).toBe(true);
    });
  }

  // Every reduction runs in a fixed order whatever the split (rows of a product, the LM head's
  // vocabulary blocks merged in order): scoring gives the same bits on any thread count.
  for (const precision of ['fp32', 'bf16'] as const) {
    it(`${precision} scoring is bitwise the same on 1, 2 and 3 threads`, () => {
      const c = tinyConfig({ hidden_size: 64, intermediate_size: 256, vocab_size: 3000 });
      const ids = randomIds(3 * 100, c.vocab_size, 3);
      const [one, ...more] = [1, 2, 3].map((threads) => {
        const e = createNativeEngine(c, { threads, precision });
        e.loadWeights(initWeights(c, 2));
        const lp = e.tokenLogprobs(ids, 3, 100);
        e.dispose();
        return lp;
      });
      for (const lp of more) expect(bits(lp).equals(bits(one))).toBe(true);
    });
  }

  for (const k of ['scalar', 'avx2'] as const) it.skipIf(!supported[k])(`the ${k} kernel matches the widest one`, async () => {
    const v = await run(2, 'auto'), s = await run(2, k);
    expect(Math.abs(v.loss - s.loss)).toBeLessThan(1e-5);
    expectClose('tokenLogprobs', s.lp, v.lp, { atol: 1e-4 });
    for (const [name, t] of v.g) expectClose(`grad ${name}`, s.g.get(name)!, t, { rtol: 1e-3, relativeToMax: true });
  });

  it('1000 training steps keep RSS flat', () => {
    const m = tinyConfig({ hidden_size: 64, intermediate_size: 256, vocab_size: 512 });
    const e = createNativeEngine(m, { threads: 2 });
    e.loadWeights(initWeights(m, 5));
    const ids = randomIds(2 * 32, m.vocab_size, 1);
    const rss = () => process.memoryUsage().rss;
    for (let s = 0; s < 20; s++) e.trainStep(ids, 2, 32);
    const start = rss();
    for (let s = 0; s < 1000; s++) {
      e.trainStep(ids, 2, 32);
      e.applyAdamW(adamw);
    }
    const end = rss();
    console.log(`native 1000 steps: RSS start ${(start / 2 ** 20).toFixed(1)} MiB, end ${(end / 2 ** 20).toFixed(1)} MiB`);
    // One leaked activation buffer per step would be > 60 MiB here.
    expect(end - start).toBeLessThan(16 * 2 ** 20);
    e.dispose();
  }, 120_000);
});
