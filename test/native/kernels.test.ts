// The row kernels of every ISA variant this CPU runs (scalar, AVX2, AVX-512), built alone with
// make and checked against long-double references (native/harness/kernel_check.cpp), and the
// fp32 GEMM's entry points on each against a double reference (native/harness/gemm_check.cpp).
import { describe, it, expect } from 'vitest';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT } from '../../src/util/paths.js';

/** Builds one harness program with make, runs it, expects exit 0, and returns what it printed. */
function runHarness(name: string): string {
  const native = path.join(ROOT, 'native');
  const build = spawnSync('make', ['-s', '-C', native, `build-harness/${name}`], { encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);
  const r = spawnSync(path.join(native, 'build-harness', name), { encoding: 'utf8' });
  console.log(r.stdout.trim());
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return r.stdout;
}

describe('native row kernels', () => {
  it('gelu and its derivative (exact and tanh) and layer norm, within bounds on every kernel', () => {
    const out = runHarness('kernel_check');
    expect(out).toMatch(/^scalar exact: .* ok$/m);  // the scalar kernel exists everywhere
    expect(out).toMatch(/^scalar layer norm: .* ok$/m);
  }, 120_000);

  it('the fp32 GEMM (mt NN/NT/TN, packed B with and without bias, st, stPacked) on every kernel', () => {
    expect(runHarness('gemm_check')).toMatch(/^scalar gemm: .* ok$/m);
  }, 180_000);
});
