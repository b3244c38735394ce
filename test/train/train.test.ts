/**
 * End-to-end trainer tests on a tiny model over a slice of the data kit: learning, exact resume
 * after SIGKILL, fallback past a corrupted checkpoint, refusal of an incompatible resume, SIGINT.
 *
 * Exactness is asserted bitwise (final weights and every logged loss) on whichever engine runs:
 * native when built (1 thread), else tfjs-cpu. Both are deterministic for a fixed thread count.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeStatus } from '../../src/engine/native/index.js';
import { readWeights } from '../../src/model/load.js';
import { readHFConfig } from '../../src/model/hf-config.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { readMetrics, type MetricRecord } from '../../src/monitor/metrics.js';
import { listCheckpoints, sha256File, verifyCheckpoint } from '../../src/train/checkpoint-store.js';
import { runTraining } from '../../src/train/run.js';
import { ROOT } from '../../src/util/paths.js';
import { writeTinyRecipe, type TinyRecipe } from '../helpers/tiny-recipe.js';

// CPT_TEST_ENGINE=tfjs runs these tests on the reference engine even where native is built.
const NATIVE = process.env.CPT_TEST_ENGINE ? process.env.CPT_TEST_ENGINE === 'native' : nativeStatus().ok;
const ENGINE = NATIVE ? 'native' : 'tfjs';
// tfjs-cpu is ~100× slower per step: keep its runs short. On native, enough steps that a kill
// sent at step EVERY + 2 lands long before the run could finish.
const STEPS = NATIVE ? 96 : 10;
const EVERY = NATIVE ? 8 : 3;
const base = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  overrides: {
    train: { max_steps: STEPS, seq_len: 32, micro_batch: 4, batch_tokens: 256, lr: 3e-3, min_lr: 3e-4, warmup: 0.1 },
    monitor: { every: EVERY, fin_test_tokens: 512, pile_test_tokens: 512 },
    checkpoint: { every: EVERY, keep: 3 },
    engine: { kind: ENGINE, threads: 1 },
    ...extra,
  },
});

let dir: string;
let reference: TinyRecipe;

async function variant(name: string, extra: Record<string, unknown> = {}): Promise<TinyRecipe> {
  return writeTinyRecipe({ ...base(name, extra), dir });
}

const quiet = { out: () => {}, err: () => {} };

/** Run `cpt train` as a child process; `onLine` may kill it. */
function cli(args: string[], onLine?: (line: string, child: ReturnType<typeof spawn>) => void, env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'train', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '', buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d;
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) onLine?.(l, child);
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** What must replay exactly: everything but wall-clock fields. */
const trajectory = (rs: MetricRecord[]) => rs.map(({ tok_s: _t, time: _w, ...rest }) => rest);

function finalWeights(runDir: string): Map<string, Float32Array> {
  const d = path.join(runDir, 'final');
  return readWeights(d, readHFConfig(d));
}

function expectSameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [k, v] of a) {
    const w = b.get(k)!;
    expect(Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength)), `tensor ${k} differs`).toBe(true);
  }
}

beforeAll(async () => {
  reference = await writeTinyRecipe(base('reference'));
  dir = reference.dir;
  await runTraining(await loadRecipe(reference.file), quiet);
}, 240_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`cpt train (${ENGINE} engine)`, { timeout: 240_000 }, () => {
  it('trains: Fin-test loss falls, one metrics record per step, final/ in HF layout with tokenizer', () => {
    const m = readMetrics(path.join(reference.runDir, 'metrics.jsonl'));
    expect(m.map((r) => r.step)).toEqual(Array.from({ length: STEPS + 1 }, (_, i) => i));
    const fin = m.filter((r) => r.fin_test !== null);
    expect(fin[0].step).toBe(0);
    expect(fin[fin.length - 1].step).toBe(STEPS);
    expect(fin[fin.length - 1].fin_test!).toBeLessThan(fin[0].fin_test! - 0.2);
    expect(m[STEPS].tokens).toBe(STEPS * 256);
    // lr follows the schedule: peak after warmup, min_lr at the end
    expect(Math.max(...m.slice(1).map((r) => r.lr!))).toBeCloseTo(3e-3, 10);
    expect(m[STEPS].lr).toBeCloseTo(3e-4, 10);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(existsSync(path.join(reference.runDir, 'final', f))).toBe(true);
    // the last checkpoint holds exactly the final weights
    const last = listCheckpoints(reference.runDir).at(-1)!;
    expect(last.step).toBe(STEPS);
    expectSameWeights(readWeights(last.dir, readHFConfig(last.dir)), finalWeights(reference.runDir));
    const state = JSON.parse(readFileSync(path.join(last.dir, 'state.json'), 'utf8'));
    expect(state).toMatchObject({ step: STEPS, tokens: STEPS * 256, cursor: STEPS * 8 });
    for (const f of ['optimizer.safetensors', 'recipe.resolved.yaml', 'metrics.jsonl', 'MANIFEST.json']) expect(existsSync(path.join(last.dir, f))).toBe(true);
  });

  it('SIGKILL mid-run, then --resume: same final weights (bitwise) and same loss trajectory, no duplicated steps', async () => {
    const r = await variant('killed');
    // The trainer SIGKILLs itself right after this step (a failpoint: a kill from here would race
    // a run this fast): after the first checkpoint, before the second.
    const killAt = EVERY + 2;
    const res = await cli([r.file], undefined, { CPT_FAILPOINT_KILL_AT_STEP: String(killAt) });
    expect(res.signal).toBe('SIGKILL');
    expect(existsSync(path.join(r.runDir, 'final'))).toBe(false);
    const before = readMetrics(path.join(r.runDir, 'metrics.jsonl'));
    expect(before.at(-1)!.step).toBeGreaterThan(EVERY); // steps after the checkpoint were lost and must be redone
    const resumed = await cli([r.file, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .*step-\d+/);
    const after = readMetrics(path.join(r.runDir, 'metrics.jsonl'));
    expect(trajectory(after)).toEqual(trajectory(readMetrics(path.join(reference.runDir, 'metrics.jsonl'))));
    expectSameWeights(finalWeights(r.runDir), finalWeights(reference.runDir));
  });

  it('skips a corrupted newest checkpoint for the previous good one, and still ends identical', async () => {
    const r = await variant('corrupt');
    const first = await cli([r.file, '--max-steps', String(2 * EVERY)]);
    expect(first.code, first.stderr).toBe(0);
    expect(listCheckpoints(r.runDir).map((c) => c.step)).toEqual([EVERY, 2 * EVERY]);
    // The ETA is to where --max-steps stops, and says so.
    expect(first.stdout + first.stderr).toMatch(new RegExp(`step 1/\\d+ \\|.*\\| eta \\S+ to step ${2 * EVERY}`));
    const f = path.join(r.runDir, `step-${2 * EVERY}`, 'model.safetensors');
    const b = readFileSync(f);
    b[b.length - 5] ^= 0x40; // one flipped bit in the weights
    writeFileSync(f, b);
    const resumed = await cli([r.file, '--resume', 'auto']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`step-${2 * EVERY} is unusable: model.safetensors fails its sha256 check`));
    expect(resumed.stderr).toMatch(new RegExp(`resuming from .*step-${EVERY} `));
    expectSameWeights(finalWeights(r.runDir), finalWeights(reference.runDir));
    expect(trajectory(readMetrics(path.join(r.runDir, 'metrics.jsonl')))).toEqual(trajectory(readMetrics(path.join(reference.runDir, 'metrics.jsonl'))));
  });

  it('refuses a resume whose recipe changed a resume key, listing every differing key', async () => {
    const r = await variant('changed');
    await runTraining(await loadRecipe(r.file), { ...quiet, maxSteps: EVERY });
    const changed = await variant('changed', { train: { max_steps: STEPS, seq_len: 16, micro_batch: 4, batch_tokens: 256, seed: 99 } });
    const err = await runTraining(await loadRecipe(changed.file), { ...quiet, resume: 'auto' }).then(() => null, (e: Error) => e);
    expect(err?.name).toBe('UserError');
    expect(err?.message).toMatch(/recipe changed in 2 keys/);
    expect(err?.message).toContain('train.seed: 11 → 99');
    expect(err?.message).toContain('train.seq_len: 32 → 16');
    // and starting over an existing run without --resume is refused too
    await expect(runTraining(await loadRecipe(changed.file), quiet)).rejects.toThrow(/already has checkpoints .*--resume/);
  });

  it('model.base_recipe: two recipes that are each other\'s base are refused, not trained in a loop', async () => {
    const runs = path.join(dir, 'runs');
    const a = await variant('cycle-a', { model: { init: path.join(runs, 'cycle-b', 'final'), base_recipe: path.join(dir, 'cycle-b.yaml') } });
    await variant('cycle-b', { model: { init: path.join(runs, 'cycle-a', 'final'), base_recipe: a.file } });
    await expect(runTraining(await loadRecipe(a.file), quiet)).rejects.toThrow(/base recipes nest more than 4 deep/);
    expect(existsSync(path.join(runs, 'cycle-a'))).toBe(false);
  });

  it('SIGINT finishes the step, writes a checkpoint and exits 130; resuming completes the same run', async () => {
    const r = await variant('sigint');
    let sent = false;
    const res = await cli([r.file], (line, child) => {
      if (!sent && /^step 2\//.test(line)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(res.code).toBe(130);
    const m = /stopped by SIGINT at step (\d+)\//.exec(res.stdout);
    expect(m, res.stdout + res.stderr).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeLessThan(STEPS);
    expect(listCheckpoints(r.runDir).at(-1)!.step).toBe(step);
    expect(readMetrics(path.join(r.runDir, 'metrics.jsonl')).at(-1)!.step).toBe(step);
    const resumed = await cli([r.file, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expectSameWeights(finalWeights(r.runDir), finalWeights(reference.runDir));
  });
});

describe(`reliability of cpt train (${ENGINE} engine)`, { timeout: 240_000 }, () => {
  it('preemption: SIGTERM three times at random steps, each time restarted with --resume auto, ends bitwise equal', async () => {
    const r = await variant('preempted');
    // Steps to stop at, drawn once from a seeded generator: a Slurm requeue at arbitrary points.
    let s = 20261202;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let resume: string[] = [];
    for (let k = 0; k < 3; k++) {
      const at = 1 + Math.floor(rand() * (STEPS / 4));
      let sent = false;
      const res = await cli([r.file, ...resume], (line, child) => {
        const m = /^step (\d+)\//.exec(line);
        if (!sent && m && Number(m[1]) >= at) {
          sent = true;
          child.kill('SIGTERM');
        }
      });
      expect(res.code, res.stderr).toBe(143);
      resume = ['--resume', 'auto'];
    }
    const done = await cli([r.file, ...resume]);
    expect(done.code, done.stderr).toBe(0);
    expectSameWeights(finalWeights(r.runDir), finalWeights(reference.runDir));
    expect(trajectory(readMetrics(path.join(r.runDir, 'metrics.jsonl')))).toEqual(trajectory(readMetrics(path.join(reference.runDir, 'metrics.jsonl'))));
  });

  it('SIGTERM before training starts (while packing) exits 143 at once: no lock, no temp file left; the next run completes', async () => {
    const r = await variant('early-term');
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'train', r.file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '', stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      if (/packed train:/.test(stderr) && !child.killed) child.kill('SIGTERM');
    });
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(code, stderr).toBe(143);
    expect(stderr).toContain('SIGTERM: stopped before training started (nothing to checkpoint yet)');
    expect(stdout).not.toMatch(/^step /m);
    const left = readdirSync(r.runDir, { recursive: true }).map(String).filter((f) => /\.cpt\.lock$|\.tmp-|\.spill-/.test(f));
    expect(left).toEqual([]);
    const again = await cli([r.file]);
    expect(again.code, again.stderr).toBe(0);
  });

  it('a second cpt train on the same run directory exits 1 naming the first; the first finishes unharmed', async () => {
    const r = await variant('locked');
    let second: Promise<Awaited<ReturnType<typeof cli>>> | undefined;
    const first = await cli([r.file], (line, child) => {
      if (second || !/^step 1\//.test(line)) return;
      // Hold the first mid-run (lock held, pid alive) until the second has answered: on a fast CPU
      // the first could otherwise finish while the second is still starting.
      child.kill('SIGSTOP');
      second = cli([r.file, '--resume', 'auto']).finally(() => child.kill('SIGCONT'));
    });
    const res = await second!;
    expect(first.code, first.stderr).toBe(0);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^cpt: ${r.runDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by cpt train \\(pid \\d+, since .+\\); wait for it or stop it$`))]);
    // every step once, exactly the uninterrupted trajectory, and the lock is gone
    expect(trajectory(readMetrics(path.join(r.runDir, 'metrics.jsonl')))).toEqual(trajectory(readMetrics(path.join(reference.runDir, 'metrics.jsonl'))));
    expect(existsSync(path.join(r.runDir, '.cpt.lock'))).toBe(false);
  });

  it('--resume auto falls back past a checkpoint whose manifest matches but whose state.json does not parse', async () => {
    const r = await variant('badstate');
    const first = await cli([r.file, '--max-steps', String(2 * EVERY)]);
    expect(first.code, first.stderr).toBe(0);
    const dirNew = path.join(r.runDir, `step-${2 * EVERY}`);
    writeFileSync(path.join(dirNew, 'state.json'), '{"step": ');
    const mf = JSON.parse(readFileSync(path.join(dirNew, 'MANIFEST.json'), 'utf8'));
    mf.files['state.json'] = { bytes: 9, sha256: sha256File(path.join(dirNew, 'state.json')) };
    writeFileSync(path.join(dirNew, 'MANIFEST.json'), JSON.stringify(mf));
    const resumed = await cli([r.file, '--resume', 'auto']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`step-${2 * EVERY} is unusable: .*state.json: not valid JSON`));
    expect(resumed.stderr).toMatch(new RegExp(`resuming from .*step-${EVERY} `));
    expectSameWeights(finalWeights(r.runDir), finalWeights(reference.runDir));
  });

  it('a non-finite loss stops the run with one line naming the step; the checkpoints before it stay good', async () => {
    const r = await variant('nan');
    const at = EVERY + 1;
    const res = await cli([r.file], undefined, { CPT_FAILPOINT_NAN_AT_STEP: String(at) });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^cpt: step ${at}: non-finite loss \\(NaN\\); stopped without applying it`));
    expect(listCheckpoints(r.runDir).map((c) => c.step)).toEqual([EVERY]);
    expect(verifyCheckpoint(path.join(r.runDir, `step-${EVERY}`)).ok).toBe(true);
    expect(readMetrics(path.join(r.runDir, 'metrics.jsonl')).at(-1)!.step).toBe(at - 1);
  });

  it('train.skip_nonfinite: true skips such a step, counts it, and never writes NaN weights', async () => {
    const r = await variant('nanskip', { train: { ...base('x').overrides.train, skip_nonfinite: true } });
    const res = await cli([r.file], undefined, { CPT_FAILPOINT_NAN_AT_STEP: '3' });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/step 3\/\d+ \| non-finite loss \(NaN\): step skipped \(1 so far\)/);
    expect(res.stdout).toMatch(/skipped steps \(non-finite loss or gradient norm\): 1/);
    for (const [k, t] of finalWeights(r.runDir)) expect(t.every(Number.isFinite), k).toBe(true);
    expect(readMetrics(path.join(r.runDir, 'metrics.jsonl'))[3].loss).toBeNull();
  });

  it('a batch below one micro-batch is said at the start, not silently doubled', async () => {
    const r = await variant('bigmicro', { train: { ...base('x').overrides.train, batch_tokens: 64 } });
    const res = await cli([r.file, '--max-steps', '1']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/note: .*train\.batch_tokens: 64 is less than one micro-batch \(micro_batch 4 × seq_len 32 = 128 tokens\); each step uses 128 tokens, 2\.0× the batch asked for/);
  });
});

describe(`task-test loss in the monitor (${ENGINE} engine)`, { timeout: 240_000 }, () => {
  it('monitor.task_test_tokens: logged at every monitor step (not between), falls as the run trains on the domain, drawn as its own panel', async () => {
    const r = await variant('tasktest', { monitor: { every: EVERY, fin_test_tokens: 512, pile_test_tokens: 512, task_test_tokens: 1500 }, train: { ...base('x').overrides.train, max_steps: 2 * EVERY } });
    const res = await cli([r.file]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/\| task-test \d+\.\d{3}/);
    const m = readMetrics(path.join(r.runDir, 'metrics.jsonl'));
    const at = m.filter((x) => x.fin_test !== null);
    expect(at.map((x) => x.step)).toEqual([0, EVERY, 2 * EVERY]);
    for (const x of at) expect(Number.isFinite(x.task_test)).toBe(true);
    expect(at[2].task_test!).toBeLessThan(at[0].task_test!); // training on the domain moves it
    expect(m.filter((x) => x.fin_test === null).every((x) => x.task_test === undefined)).toBe(true);
    const { lossChartSpec } = await import('../../src/monitor/plot.js');
    expect(JSON.stringify(lossChartSpec([{ name: 'a', records: m }], { x: 'tokens', train: false }))).toContain('Task-test loss');
  });
});
