// The row kernels of every ISA variant this CPU runs (scalar, AVX2, AVX-512), built alone with
// make and checked against long-double references (native/harness/kernel_check.cpp), and the
// fp32 GEMM's entry points on each against a double reference (native/harness/gemm_check.cpp).
import { describe, it, expect } from 'vitest';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT } from '../../src/util/paths.js';

describe('native row kernels', () => {
  it('gelu and its derivative (exact and tanh) and layer norm, within bounds on every kernel', () => {
    const native = path.join(ROOT, 'native');
    const build = spawnSync('make', ['-s', '-C', native, 'build-harness/kernel_check'], { encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    const r = spawnSync(path.join(native, 'build-harness', 'kernel_check'), { encoding: 'utf8' });
    console.log(r.stdout.trim());
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^scalar exact: .* ok$/m);  // the scalar kernel exists everywhere
    expect(r.stdout).toMatch(/^scalar layer norm: .* ok$/m);
  }, 120_000);

  it('the fp32 GEMM (mt NN/NT/TN, packed B with and without bias, st, stPacked) on every kernel', () => {
    const native = path.join(ROOT, 'native');
    const build = spawnSync('make', ['-s', '-C', native, 'build-harness/gemm_check'], { encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    const r = spawnSync(path.join(native, 'build-harness', 'gemm_check'), { encoding: 'utf8' });
    console.log(r.stdout.trim());
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^scalar gemm: .* ok$/m);
  }, 180_000);
});
