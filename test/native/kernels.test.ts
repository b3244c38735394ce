// The row kernels of every ISA variant this CPU runs (scalar, AVX2, AVX-512), built alone with
// make and checked against long-double references (native/harness/kernel_check.cpp).
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
});
