/**
 * `engine.kind: cuda` through the product, on the simulator (CPT_CUDA_SIM=1): `cpt train` and
 * `cpt score` go through the TypeScript binding and the Node addon into the CUDA engine's code,
 * run on the CPU. Its loss curve must equal the CPU engine's within fp32 tolerance, and a run
 * killed mid-way and resumed must end bitwise equal to one that was not.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics, type MetricRecord } from '../../src/monitor/metrics.js';
import { readWeights } from '../../src/model/load.js';
import { readHFConfig } from '../../src/model/hf-config.js';
import { ROOT } from '../../src/util/paths.js';
import { writeTinyRecipe, type TinyRecipe } from '../helpers/tiny-recipe.js';
import { simMissing } from './sim.js';

const SIM = { CPT_CUDA_SIM: '1' };
const STEPS = 16, EVERY = 8;
const overrides = (kind: string) => ({
  train: { max_steps: STEPS, seq_len: 32, micro_batch: 4, batch_tokens: 256, lr: 3e-3, min_lr: 3e-4, warmup: 0.1 },
  monitor: { every: EVERY, fin_test_tokens: 512, pile_test_tokens: 512 },
  checkpoint: { every: EVERY, keep: 3 },
  engine: kind === 'cuda' ? { kind, precision: 'fp32' } : { kind, threads: 1 },
});

function cpt(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
const trajectory = (rs: MetricRecord[]) => rs.map(({ tok_s: _t, time: _w, ...rest }) => rest);
const weights = (runDir: string) => readWeights(path.join(runDir, 'final'), readHFConfig(path.join(runDir, 'final')));
/** The same trajectory (metrics but their timings) and final weights, bitwise. */
function expectSameRun(runDir: string, reference: string) {
  expect(trajectory(readMetrics(path.join(runDir, 'metrics.jsonl')))).toEqual(trajectory(readMetrics(path.join(reference, 'metrics.jsonl'))));
  const a = weights(runDir), b = weights(reference);
  for (const [k, v] of a) expect(Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(Buffer.from(b.get(k)!.buffer, b.get(k)!.byteOffset, b.get(k)!.byteLength)), k).toBe(true);
}

let dir: string;
let cpu: TinyRecipe, gpu: TinyRecipe;
let gpuRun: Awaited<ReturnType<typeof cpt>>;

beforeAll(async () => {
  expect(simMissing()).toBeUndefined();
  cpu = await writeTinyRecipe({ name: 'cpu', overrides: overrides('native') });
  dir = cpu.dir;
  gpu = await writeTinyRecipe({ name: 'gpu', dir, overrides: overrides('cuda') });
  const c = await cpt(['train', cpu.file]);
  expect(c.code, c.stderr).toBe(0);
  gpuRun = await cpt(['train', gpu.file], SIM);
  expect(gpuRun.code, gpuRun.stderr).toBe(0);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('engine.kind: cuda on the simulator, through cpt', { timeout: 300_000 }, () => {
  it('names the simulated device', () => {
    expect(gpuRun.stdout).toMatch(/engine +cuda on cuda-sim \(SIMT simulator on the CPU/);
  });

  it('trains the same loss curve as the CPU engine (fp32 tolerance)', () => {
    const a = readMetrics(path.join(gpu.runDir, 'metrics.jsonl')), b = readMetrics(path.join(cpu.runDir, 'metrics.jsonl'));
    expect(a.map((m) => m.step)).toEqual(b.map((m) => m.step));
    expect(a.length).toBe(STEPS + 1);
    for (const [i, m] of a.entries())
      for (const k of ['loss', 'grad_norm', 'fin_test', 'pile_test'] as const) {
        const x = m[k], y = b[i][k];
        expect(x === null, `${k} at step ${m.step}`).toBe(y === null);
        if (x !== null && y !== null) expect(Math.abs(x - y), `${k} at step ${m.step}: ${x} vs ${y}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(y)));
      }
  });

  it('killed mid-run and resumed with --resume auto: the same trajectory and final weights, bitwise', async () => {
    const r = await writeTinyRecipe({ name: 'gpu-killed', dir, overrides: overrides('cuda') });
    const killed = await cpt(['train', r.file], { ...SIM, CPT_FAILPOINT_KILL_AT_STEP: String(EVERY + 2) });
    expect(killed.signal).toBe('SIGKILL');
    const resumed = await cpt(['train', r.file, '--resume', 'auto'], SIM);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming from .*step-${EVERY}`));
    expectSameRun(r.runDir, gpu.runDir);
  });

  it('with each step run eagerly (CPT_CUDA_GRAPHS=0) instead of replayed as a CUDA graph: the same trajectory and final weights, bitwise', async () => {
    const r = await writeTinyRecipe({ name: 'gpu-eager', dir, overrides: overrides('cuda') });
    const run = await cpt(['train', r.file], { ...SIM, CPT_CUDA_GRAPHS: '0' });
    expect(run.code, run.stderr).toBe(0);
    expectSameRun(r.runDir, gpu.runDir);
  });

  it('cpt score --engine cuda gives the CPU engine\'s per-line losses', async () => {
    const text = path.join(dir, 'lines.jsonl');
    writeFileSync(text, ['Net income rose 12% in the third quarter.', 'The board approved a dividend of 40 cents a share.', 'Shares fell after the guidance cut.'].map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
    const model = path.join(gpu.runDir, 'final');
    const tok = path.join(dir, 'tiny-tokenizer.json');
    const g = await cpt(['score', '--model', model, '--text', text, '--engine', 'cuda', '--precision', 'fp32', '--tokenizer', tok], SIM);
    const c = await cpt(['score', '--model', model, '--text', text, '--engine', 'native', '--threads', '1', '--tokenizer', tok]);
    expect(g.code, g.stderr).toBe(0);
    const parse = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l) as { loss: number });
    const gl = parse(g.stdout), cl = parse(c.stdout);
    expect(gl).toHaveLength(3);
    for (const [i, x] of gl.entries()) expect(Math.abs(x.loss - cl[i].loss)).toBeLessThan(1e-4);
  });
});
