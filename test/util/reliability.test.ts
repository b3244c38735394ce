// Faults a new user meets outside the training loop (the loop's own are in test/train/): locks
// held by live or dead processes, leftovers of killed writers, integer weights, non-finite scores,
// an empty CPT_DATA, prepare onto a file, prompts longer than the context, and a full disk.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { presetConfig } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/init.js';
import { saveModel, loadModel } from '../../src/model/load.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { paramSpecs } from '../../src/model/config.js';
import { runScore } from '../../src/cli/score.js';
import { packDocuments } from '../../src/data/index.js';
import { prepareCorpus } from '../../src/data/shards.js';
import { loadTaskConfig } from '../../src/eval/config.js';
import { runTask } from '../../src/eval/run.js';
import { verifyCheckpoint, writeCheckpoint } from '../../src/train/checkpoint-store.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { lockDir, removeDeadWriters } from '../../src/util/lock.js';
import { dataDir, ROOT } from '../../src/util/paths.js';
import { UserError } from '../../src/util/errors.js';
import { fakeEngine, wordTokenizer } from '../eval/fakes.js';
import { goldenDir } from '../helpers/golden.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cpt-faults-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A pid that existed and is gone (a finished child). */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid!;
}

describe('one writer per directory', () => {
  it('a lock held by a live process is refused with one line naming it; a dead holder\'s lock is taken over', async () => {
    const dir = path.join(tmp, 'locked');
    mkdirSync(dir);
    const holder = spawn('sleep', ['30']);
    try {
      writeFileSync(path.join(dir, '.cpt.lock'), JSON.stringify({ pid: holder.pid, host: os.hostname(), started: '2026-12-02T00:00:00Z', command: 'cpt train' }));
      expect(() => lockDir(dir, 'cpt select')).toThrow(new UserError(`${dir} is in use by cpt train (pid ${holder.pid}, since 2026-12-02T00:00:00Z); wait for it or stop it`));
    } finally {
      holder.kill();
    }
    writeFileSync(path.join(dir, '.cpt.lock'), JSON.stringify({ pid: deadPid(), host: os.hostname(), started: 'x', command: 'cpt train' }));
    const release = lockDir(dir, 'cpt select');
    expect(JSON.parse(readFileSync(path.join(dir, '.cpt.lock'), 'utf8')).pid).toBe(process.pid);
    const again = lockDir(dir, 'cpt train'); // nested in one process: counted, not refused
    again();
    expect(existsSync(path.join(dir, '.cpt.lock'))).toBe(true);
    release();
    expect(existsSync(path.join(dir, '.cpt.lock'))).toBe(false);
  });

  it('a lock from another host is refused and says how to clear it', () => {
    const dir = path.join(tmp, 'remote');
    mkdirSync(dir);
    writeFileSync(path.join(dir, '.cpt.lock'), JSON.stringify({ pid: 1, host: 'node-17', started: 'x', command: 'cpt train' }));
    expect(() => lockDir(dir, 'cpt train')).toThrow(`is in use by cpt train (pid 1 on host node-17, since x); wait for it or stop it (if it is gone, delete ${path.join(dir, '.cpt.lock')})`);
  });

  it('cpt prepare refuses an output directory another live process is writing', async () => {
    const out = path.join(tmp, 'prep-locked');
    mkdirSync(out);
    const holder = spawn('sleep', ['30']);
    try {
      writeFileSync(path.join(out, '.cpt.lock'), JSON.stringify({ pid: holder.pid, host: os.hostname(), started: 'x', command: 'cpt prepare' }));
      const spec = { name: 'reut', path: path.join(dataDir(), 'corpus/fin/reuters21578'), format: 'reuters-sgml' as const, include: 'reut2-021.sgm', encoding: 'latin1' as const, skip_bad: false, fields: [] };
      await expect(prepareCorpus([spec as never], out, { shardMb: 8 })).rejects.toThrow(/is in use by cpt prepare \(pid \d+/);
    } finally {
      holder.kill();
    }
  });

  it('only the temps and spills of dead writers are removed', async () => {
    const dir = path.join(tmp, 'leftovers');
    mkdirSync(dir);
    const live = process.ppid, dead = deadPid();
    for (const n of [`.tmp-step-4-${dead}`, `.tmp-step-8-${live}`]) mkdirSync(path.join(dir, n));
    expect(removeDeadWriters(dir, /^\.tmp-step-\d+-(\d+)$/)).toEqual([`.tmp-step-4-${dead}`]);
    // A packer killed mid-way leaves its spill; the next pack removes it (a live one's stays).
    const out = path.join(dir, 'train.packed.json');
    writeFileSync(`${out}.spill-${dead}`, 'x');
    writeFileSync(`${out}.spill-${live}`, 'x');
    await packDocuments({ docs: (async function* () { yield { id: 'd', ids: Int32Array.of(1, 2, 3, 4, 5) }; })(), seqLen: 2, seed: 1, out });
    expect(readdirSync(dir).filter((n) => n.includes('.spill-')).sort()).toEqual([`train.packed.json.spill-${live}`]);
  });
});

describe('no silent wrong numbers', () => {
  it('integer-typed weights are refused, naming the tensor', async () => {
    const c = { ...presetConfig('pythia-14m'), vocab_size: 128, num_hidden_layers: 1 };
    const dir = path.join(tmp, 'int-weights');
    await saveModel(dir, c, initWeights(c, 1));
    const n = (s: { shape: number[] }) => s.shape.reduce((a, b) => a * b, 1);
    const tensors = new Map(paramSpecs(c).map((s) => [s.name, s.name.endsWith('attention.dense.weight')
      ? { dtype: 'I32' as const, shape: s.shape, data: new Int32Array(n(s)) }
      : { dtype: 'F32' as const, shape: s.shape, data: new Float32Array(n(s)) }]));
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    await expect(loadModel(dir)).rejects.toThrow(/tensor "gpt_neox\.layers\.0\.attention\.dense\.weight" is I32, an integer type; expected a float tensor/);
  });

  it('cpt score on a model with NaN weights marks every line non-finite and fails', async () => {
    const c = { ...presetConfig('pythia-14m'), vocab_size: 128, num_hidden_layers: 1 };
    const w = initWeights(c, 1);
    w.get('gpt_neox.final_layer_norm.weight')!.fill(NaN);
    const dir = path.join(tmp, 'nan-model');
    await saveModel(dir, c, w);
    const ids = path.join(tmp, 'ids.jsonl'), out = path.join(tmp, 'scores.jsonl');
    writeFileSync(ids, '{"ids": [1,2,3,4]}\n{"ids": [5,6,7]}\n{"ids": [9]}\n');
    await expect(runScore({ model: dir, ids, engine: 'tfjs', out })).rejects.toThrow(/every one of the 2 scored lines has a non-finite loss/);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.nonfinite ?? false)).toEqual([true, true, false]); // the 1-token line has no loss at all
    expect(lines[0].loss).toBeNull();
  });

  it('CPT_DATA= (empty) is treated as unset', () => {
    const prev = process.env.CPT_DATA;
    try {
      process.env.CPT_DATA = '';
      expect(dataDir()).toBe(path.join(ROOT, '..', 'shared', 'data'));
    } finally {
      if (prev === undefined) delete process.env.CPT_DATA;
      else process.env.CPT_DATA = prev;
    }
  });

  it('cpt prepare --out naming an existing file is one line, not EEXIST', () => {
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'prepare', '--input', path.join(dataDir(), 'corpus/fin/reuters21578'), '--format', 'reuters-sgml', '--out', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`cpt: ${file}: exists and is not a directory; the prepared corpus needs a directory of its own`]);
  });

  it('eval counts prompts cut to the context (more shots than fit) and warns with the count', async () => {
    const cfg = await loadTaskConfig('fpb');
    const r = await runTask(cfg, fakeEngine({ maxLen: 64 }), wordTokenizer, { dataDir: dataDir(), shots: 20, limit: 10, seed: 1, batch: 4, maxLen: 64 });
    expect(r.truncated).toBe(r.requests); // 20 FPB sentences never fit in 64 tokens
    const short = await runTask(cfg, fakeEngine(), wordTokenizer, { dataDir: dataDir(), shots: 0, limit: 10, seed: 1, batch: 4 });
    expect(short.truncated).toBe(0);
  });
});

// A real full disk: a 2 MiB tmpfs (needs root, as in CI; skipped elsewhere).
const mnt = path.join(tmp, 'small-disk');
mkdirSync(mnt);
const tmpfs = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status === 0;
afterAll(() => {
  if (tmpfs) spawnSync('umount', [mnt]);
});

describe.runIf(tmpfs)('disk full (2 MiB tmpfs)', () => {
  it('a checkpoint that does not fit: one line with the file, the space needed and free; no temp left; the previous checkpoint verifies', () => {
    const run = path.join(mnt, 'run');
    mkdirSync(run);
    writeCheckpoint(run, 1, { 'model.bin': Buffer.alloc(256 * 1024, 1), 'state.json': '{}' }, 3);
    let err: unknown;
    try {
      writeCheckpoint(run, 2, { 'model.bin': Buffer.alloc(4 * 1024 * 1024, 2), 'state.json': '{}' }, 3, 4 * 1024 * 1024);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`^cannot write checkpoint ${run}/step-2 \\(model\\.bin\\); earlier checkpoints are untouched: no space left on device \\(needs about 4\\.0 MB, \\d+\\.\\d MB free in ${run}\\)$`));
    expect(readdirSync(run).sort()).toEqual(['step-1']);
    expect(verifyCheckpoint(path.join(run, 'step-1')).ok).toBe(true);
  });

  it('packed rows that do not fit: one line with the sizes (never "0.0 MB"), and neither rows nor temp files left (B67)', async () => {
    const dir = path.join(mnt, 'packed');
    mkdirSync(dir);
    const out = path.join(dir, 'pile-test.packed.json');
    async function* docs() {
      for (let i = 0; i < 300; i++) yield { id: `d${i}`, ids: new Int32Array(4096).fill(7 + (i % 5)) };
    }
    const err = await packDocuments({ docs: docs(), seqLen: 128, seed: 1, out }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`^cannot write ${out} \\(packed rows\\): no space left on device \\((needs about \\d+\\.\\d MB, )?\\d+(\\.\\d (KB|MB)| bytes) free in ${dir}\\)$`));
    expect((err as Error).message).not.toMatch(/ 0\.0 MB/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an atomic file write (shards, manifests) that does not fit leaves no temp file', async () => {
    const dir = path.join(mnt, 'shards');
    mkdirSync(dir);
    await expect(writeFileAtomic(path.join(dir, 'shard-00000.arrow'), Buffer.alloc(3 * 1024 * 1024))).rejects.toThrow(/^cannot write .*shard-00000\.arrow: no space left on device \(needs about 3\.0 MB/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('the golden model scores finite', () => {
  it('control: the same score call on sound weights exits normally', async () => {
    const ids = path.join(tmp, 'ids2.jsonl');
    writeFileSync(ids, '{"ids": [1,2,3,4]}\n');
    const r = await runScore({ model: goldenDir(), ids, engine: 'tfjs', out: path.join(tmp, 's2.jsonl') });
    expect(r.nonfinite).toBe(0);
    expect(execFileSync('cat', [path.join(tmp, 's2.jsonl')], { encoding: 'utf8' })).not.toMatch(/nonfinite/);
  });
});

// A read-only run directory (B66): a read-only bind mount (needs root, as in CI; skipped elsewhere).
const roDir = path.join(tmp, 'read-only-run');
mkdirSync(roDir);
const readOnly = spawnSync('mount', ['--bind', roDir, roDir]).status === 0 && spawnSync('mount', ['-o', 'remount,ro,bind', roDir]).status === 0;
afterAll(() => {
  if (readOnly) spawnSync('umount', [roDir]);
});

describe.runIf(readOnly)('a read-only run directory', () => {
  it('cpt train exits 1 with one line naming the path and the cause, not an internal error', async () => {
    const { writeTinyRecipe } = await import('../helpers/tiny-recipe.js');
    const t = await writeTinyRecipe({ name: 'ro', overrides: { run_dir: roDir, engine: { kind: 'native', threads: 1 }, train: { max_steps: 2 } } });
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'train', t.file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`cpt: ${path.join(roDir, '.cpt.lock')}: read-only file system (open)`]);
  });
});
