/**
 * The GPU build of the CUDA engine finds cuBLASLt when it runs, not when it is linked: it loads
 * against the CUDA 13 wheel's libcublasLt.so.13 and against the CUDA 12 wheel's .so.12 (the one
 * PyTorch cu12x brings), resolves every function it calls, and only then reports that this
 * machine has no CUDA device. .ci/run fetches the CUDA 12 wheel's library (CPT_CUBLAS12).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CUDA_GPU_LIB_PATH } from '../../src/engine/native/index.js';

const check = path.join(path.dirname(CUDA_GPU_LIB_PATH), 'cuda_check');
const built = existsSync(check);
const expectBuilt = process.env.CPT_EXPECT_CUDA_BUILD === '1';

function cu13(): string | undefined {
  try {
    const dir = execFileSync('python3', ['-c', 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))'], { encoding: 'utf8' }).trim();
    return existsSync(path.join(dir, 'libcublasLt.so.13')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** `cuda_check probe` of a build (default: the CUDA 13 one) as name → value. */
function probe(env: Record<string, string>, bin = check): Map<string, string> {
  const r = spawnSync(bin, ['probe'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...env } });
  expect(r.stderr).not.toMatch(/error while loading shared libraries|undefined symbol/);
  return new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe.runIf(built || expectBuilt)('the CUDA library and cuBLASLt', () => {
  it('was built (npm ci with the CUDA build wheels)', () => expect(built).toBe(true));

  it('needs nothing but libc at load time: no cuBLASLt, no libstdc++', () => {
    const ldd = execFileSync('ldd', [CUDA_GPU_LIB_PATH], { encoding: 'utf8' });
    expect(ldd).not.toMatch(/cublas|libstdc\+\+|libcudart/);
  });

  it.runIf(cu13() !== undefined)('finds libcublasLt.so.13 in a directory named by CPT_CUDA_LIBS, then reports no CUDA device', () => {
    const dir = cu13()!;
    const p = probe({ CPT_CUDA_LIBS: dir });
    expect(p.get('cublaslt')).toBe(path.join(dir, 'libcublasLt.so.13'));
    expect(Number(p.get('cublaslt_version'))).toBeGreaterThanOrEqual(130000);
    expect(p.get('probe_error')).toMatch(/^no CUDA device was found/);
  });

  it.runIf(!!process.env.CPT_CUBLAS12)('loads the CUDA 12 wheel\'s libcublasLt.so.12 with every function resolved, then reports no CUDA device', () => {
    const p = probe({ CPT_CUBLASLT: process.env.CPT_CUBLAS12! });
    expect(p.get('cublaslt_error')).toBeUndefined();
    expect(p.get('cublaslt')).toBe(process.env.CPT_CUBLAS12);
    expect(Number(p.get('cublaslt_version'))).toBeGreaterThanOrEqual(120000);
    expect(Number(p.get('cublaslt_version'))).toBeLessThan(130000);
    expect(p.get('probe_error')).toMatch(/^no CUDA device was found/);
  });

  it('a cuBLASLt that cannot be loaded is named', () => {
    const p = probe({ CPT_CUBLASLT: '/nonexistent/libcublasLt.so.13' });
    expect(p.get('cublaslt_error')).toMatch(/^CPT_CUBLASLT=\/nonexistent\/libcublasLt\.so\.13 cannot be loaded: /);
  });
});

// The same engine built with CUDA 11.8 (native/cuda/fetch-cuda11.sh; .ci/run sets CPT_CUDA11_ROOT)
// for drivers older than R580: statically linked too, loads cuBLASLt 11 and 12 with every function
// resolved, and names the older driver it needs.
const cuda11 = path.join(path.dirname(CUDA_GPU_LIB_PATH), 'cuda11');
const lt11 = process.env.CPT_CUDA11_ROOT && path.join(process.env.CPT_CUDA11_ROOT, 'usr', 'lib', 'x86_64-linux-gnu', 'libcublasLt.so.11');
describe.runIf(existsSync(path.join(cuda11, 'cuda_check')) || !!process.env.CPT_CUDA11_ROOT)('the CUDA 11.8 build', () => {
  const probe11 = (env: Record<string, string>) => probe(env, path.join(cuda11, 'cuda_check'));

  it('was built, and needs nothing but libc at load time', () => {
    expect(existsSync(path.join(cuda11, 'libcpt_cuda.so'))).toBe(true);
    expect(execFileSync('ldd', [path.join(cuda11, 'libcpt_cuda.so')], { encoding: 'utf8' })).not.toMatch(/cublas|libstdc\+\+|libcudart/);
  });

  it.runIf(!!lt11)('loads cuBLASLt 11 with every function resolved, then names the driver it needs', () => {
    const p = probe11({ CPT_CUBLASLT: lt11! });
    expect(p.get('cublaslt_error')).toBeUndefined();
    expect(Number(p.get('cublaslt_version'))).toBeGreaterThanOrEqual(110000);
    expect(Number(p.get('cublaslt_version'))).toBeLessThan(120000);
    expect(p.get('probe_error')).toMatch(/^no CUDA device was found .*R520 or newer \(CUDA 11\.8/);
  });

  it.runIf(!!process.env.CPT_CUBLAS12)('loads the CUDA 12 wheel\'s cuBLASLt (what PyTorch cu12x brings) too', () => {
    const p = probe11({ CPT_CUBLASLT: process.env.CPT_CUBLAS12! });
    expect(p.get('cublaslt_error')).toBeUndefined();
    expect(Number(p.get('cublaslt_version'))).toBeGreaterThanOrEqual(120000);
  });
});
