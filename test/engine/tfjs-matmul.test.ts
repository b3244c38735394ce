import { describe, it, expect, beforeAll } from 'vitest';
import { tf, initBackend } from '../../src/engine/tfjs/backend.js';
import { registerFastMatMul } from '../../src/engine/tfjs/kernels.js';
import { expectClose } from '../helpers/close.js';

/** Naive float64 reference: C[b] = op(A[b]) · op(B[b]), batch dims of 1 broadcast. */
function reference(a: Float32Array, as: number[], ta: boolean, b: Float32Array, bs: number[], tb: boolean): Float64Array {
  const M = ta ? as.at(-1)! : as.at(-2)!, K = ta ? as.at(-2)! : as.at(-1)!, N = tb ? bs.at(-2)! : bs.at(-1)!;
  const ba = as.slice(0, -2).reduce((x, y) => x * y, 1), bb = bs.slice(0, -2).reduce((x, y) => x * y, 1), B = Math.max(ba, bb);
  const out = new Float64Array(B * M * N);
  for (let q = 0; q < B; q++) {
    const oa = (q % ba) * M * K, ob = (q % bb) * K * N;
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[oa + (ta ? k * M + i : i * K + k)] * b[ob + (tb ? j * K + k : k * N + j)];
      out[q * M * N + i * N + j] = s;
    }
  }
  return out;
}

describe('fast cpu BatchMatMul kernel', () => {
  beforeAll(async () => {
    await initBackend(() => {});
    registerFastMatMul();
  });

  const cases: [number[], boolean, number[], boolean][] = [
    [[5, 7], false, [7, 3], false],
    [[7, 5], true, [7, 3], false],
    [[5, 7], false, [3, 7], true],
    [[7, 5], true, [3, 7], true],
    [[2, 3, 6, 4], false, [2, 3, 4, 9], false], // attention-shaped batches
    [[2, 3, 6, 4], false, [2, 3, 6, 4], true],
    [[1, 6, 4], false, [3, 4, 2], false], // batch broadcast
    [[9, 600], false, [7, 600], true], // several K slabs, ragged 4x4 tiles
    [[600, 70], true, [600, 5], false],
  ];
  for (const [as, ta, bs, tb] of cases) {
    it(`[${as}]${ta ? 'ᵀ' : ''} · [${bs}]${tb ? 'ᵀ' : ''}`, () => {
      const a = tf.randomNormal(as, 0, 1, 'float32', 1), b = tf.randomNormal(bs, 0, 1, 'float32', 2);
      const c = tf.matMul(a, b, ta, tb);
      const want = reference(a.dataSync() as Float32Array, as, ta, b.dataSync() as Float32Array, bs, tb);
      expect(c.shape.slice(-2)).toEqual([ta ? as.at(-1) : as.at(-2), tb ? bs.at(-2) : bs.at(-1)]);
      expectClose('matMul', c.dataSync(), want, { atol: 1e-5 });
      tf.dispose([a, b, c]);
    });
  }

  it('gradients through the kernel match the analytic gradient', () => {
    const a = tf.randomNormal([3, 4], 0, 1, 'float32', 3), b = tf.randomNormal([5, 4], 0, 1, 'float32', 4);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, false, true).square().sum())([a, b]);
    // d/dA sum((A Bᵀ)²) = 2 (A Bᵀ) B; d/dB = 2 (A Bᵀ)ᵀ A.
    const A = a.dataSync() as Float32Array, B = b.dataSync() as Float32Array;
    const C = reference(A, [3, 4], false, B, [5, 4], true);
    const wantA = reference(Float32Array.from(C, (x) => 2 * x), [3, 5], false, B, [5, 4], false);
    const wantB = reference(Float32Array.from(C, (x) => 2 * x), [3, 5], true, A, [3, 4], false);
    expectClose('dA', ga.dataSync(), wantA, { atol: 1e-4 });
    expectClose('dB', gb.dataSync(), wantB, { atol: 1e-4 });
    tf.dispose([a, b, ga, gb]);
  });
});
