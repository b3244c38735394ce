/**
 * native/cuda/verify.sh, the one command a lent GPU runs, checked where there is no GPU: its
 * preflight stops with a diagnosis (a fake nvidia-smi stands in for the driver's), and on the
 * simulator build it runs its steps, cuts them at the deadline and still prints its summary.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { goldenDir } from '../helpers/golden.js';
import { CUDA_GPU_LIB_PATH } from '../../src/engine/native/index.js';
import { ROOT } from '../../src/util/paths.js';
import { run, simMissing } from './sim.js';

const gpuBuilt = existsSync(path.join(path.dirname(CUDA_GPU_LIB_PATH), 'cuda_check'));

async function verify(env: Record<string, string>, args: string[] = [], smi?: string) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cpt-verify-'));
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin);
  if (smi !== undefined) {
    writeFileSync(path.join(bin, 'nvidia-smi'), `#!/bin/sh\necho "${smi}"\n`);
    chmodSync(path.join(bin, 'nvidia-smi'), 0o755);
  }
  const out = path.join(tmp, 'out');
  const t0 = Date.now();
  const r = await run('bash', [path.join(ROOT, 'native/cuda/verify.sh'), ...args], { timeoutMs: 120_000, env: { PATH: `${bin}:${process.env.PATH}`, OUT: out, ...env } });
  const log = existsSync(path.join(out, 'verify.log')) ? readFileSync(path.join(out, 'verify.log'), 'utf8') : '';
  return { status: r.status, stdout: r.stdout, log, seconds: (Date.now() - t0) / 1000, tmp };
}
/** The summary: the lines after "# summary". */
const summary = (s: string) => s.slice(s.indexOf('# summary')).trim().split('\n').slice(1);

describe('verify.sh without a GPU', () => {
  it.runIf(gpuBuilt)('the preflight stops at once, naming the missing device, with the log and summary written', async () => {
    const r = await verify({}, [], 'NVIDIA H200, 580.159.03, 143771 MiB, 9.0');
    expect(r.status).toBe(1);
    expect(r.seconds).toBeLessThan(20);
    const s = summary(r.log);
    expect(s).toContain('gpu=NVIDIA H200, 580.159.03, 143771 MiB, 9.0');
    expect(s).toContain('preflight=FAIL');
    expect(s.find((l) => l.startsWith('diagnosis='))).toMatch(/^diagnosis=no CUDA device was found/);
    expect(s.at(-1)).toBe('verify=FAIL');
    expect(r.stdout).toBe(r.log); // everything printed reached the log
  });

  it('a driver older than R580 gets the CUDA 11.8 build where it was built, else is named before anything runs', async () => {
    const r = await verify({}, [], 'NVIDIA A100-SXM4-80GB, 535.104.05, 81920 MiB, 8.0');
    expect(r.status).toBe(1);
    const s = summary(r.log);
    if (existsSync(path.join(ROOT, 'native/build-cuda/cuda11/cuda_check'))) {
      expect(s).toContain('build=cuda11 (driver 535.104.05 is older than R580: the CUDA 11.8 build)');
      expect(s).toContain('cublaslt_version=' + s.find((l) => l.startsWith('cublaslt_version='))!.split('=')[1]);
      expect(s.find((l) => l.startsWith('diagnosis='))).toMatch(/^diagnosis=no CUDA device was found .*R520 or newer \(CUDA 11\.8/);
    } else {
      expect(s.find((l) => l.startsWith('diagnosis='))).toMatch(/^diagnosis=driver 535\.104\.05: the CUDA engine is built with CUDA 13, which needs driver R580 or newer/);
    }
    const old = await verify({}, [], 'NVIDIA V100, 418.87.01, 16160 MiB, 7.0');
    expect(summary(old.log).find((l) => l.startsWith('diagnosis='))).toMatch(/^diagnosis=driver 418\.87\.01: the CUDA engine is built with CUDA 13, which needs driver R580 or newer/);
  });

  it('no nvidia-smi: no driver', async () => {
    const r = await verify({ PATH: '/usr/bin:/bin' });
    expect(summary(r.log)).toContain('diagnosis=nvidia-smi not found: no NVIDIA driver on this machine');
  });

  it('on the simulator: golden passes, parity is cut at the deadline, later steps are skipped, the summary still comes', async () => {
    expect(simMissing()).toBeUndefined();
    const data = mkdtempSync(path.join(os.tmpdir(), 'cpt-verify-data-'));
    cpSync(goldenDir(), path.join(data, 'neox-tiny'), { recursive: true });
    const r = await verify({ CPT_CUDA_SIM: '1', VERIFY_DATA: data }, ['35']);
    expect(r.status).toBe(1);
    expect(r.seconds).toBeLessThan(35 + 10);
    const s = summary(r.log);
    // the preflight leaves the deadline to the checks
    expect(Number(s.find((l) => l.startsWith('preflight=pass'))?.match(/^preflight=pass \((\d+\.\d) s\)$/)?.[1])).toBeLessThan(1);
    expect(s).toEqual(expect.arrayContaining(['golden_fp32=pass', 'golden_bf16=pass', 'bench_1b=SKIPPED (deadline)', 'bench_410m=SKIPPED (deadline)', 'verify=FAIL']));
    expect(s.find((l) => l.startsWith('golden=pass'))).toBeTruthy();
    expect(s.find((l) => l.startsWith('parity='))).toMatch(/^parity=TIMEOUT after \d+ s$/);
    // lines a step printed before it was killed are kept
    expect(s.filter((l) => l.startsWith('parity_')).length).toBeGreaterThan(0);
    expect(s).toContain(`data=missing ${data}/kit-tokens.u16 (npm run cuda:bundle writes it): the steps that read it are skipped`);
  });
});
