/**
 * Scoring spread over workers (`cpt select --worker I/N`, then a plain `cpt select`): for every
 * method and both samplings, the selection and score tables from 2 and 3 workers (run in another
 * order, one killed and rerun) are bitwise the single-process ones; mismatched workers are
 * refused; `--workers N` runs local processes; `--emit` writes Slurm scripts and Kubernetes Jobs
 * that the Kubernetes object schema accepts; the Slurm ones run for real on a one-node cluster
 * (test/slurm/cluster.sh; skipped with one line where slurm-wlm is not installed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { writeTinyRecipe, type TinyRecipe } from '../helpers/tiny-recipe.js';
import { queued, SLURM_MISSING, slurmAvailable, startCluster, until } from '../helpers/slurm.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { runSelection, runSelectionWorker } from '../../src/select/index.js';
import { readScores } from '../../src/select/score-file.js';
import { parseWorker } from '../../src/select/workers.js';
import { prepareCorpus } from '../../src/data/index.js';
import type { Recipe } from '../../src/recipe/types.js';
import { nativeStatus } from '../../src/engine/native/index.js';
import { ROOT } from '../../src/util/paths.js';

const FILES = 'reut2-00[0-2].sgm';
const engine = { kind: nativeStatus().ok ? 'native' : 'tfjs', threads: 1 };
let base: TinyRecipe;
// Retried: slurmd may still be writing its state directory as the cluster stops.
afterAll(() => rmSync(base.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }));
beforeAll(async () => {
  base = await writeTinyRecipe({ name: 'base', reutersFiles: FILES });
});

/** A recipe of the shared test corpus; `tag` keeps each configuration's run directory apart. */
async function recipe(tag: string, method: Recipe['method'], selection: Record<string, unknown> = {}, data: Record<string, unknown> = {}): Promise<Recipe> {
  const name = `${tag}-${method}-${selection.metric ?? ''}${selection.sampling ?? ''}`;
  const t = await writeTinyRecipe({
    name, method, dir: base.dir, reutersFiles: FILES,
    overrides: { selection: { seed: 7, budget: 0.1, ...selection }, data: { shard_mb: 0.25, prepared_dir: path.join(base.dir, 'prepared'), ...data }, engine },
  });
  return loadRecipe(t.file);
}

const METHODS: [Recipe['method'], Record<string, unknown>][] = [
  ['ets-dacp', {}], ['eta-dacp', { metric: 'perplexity' }], ['eta-dacp', { metric: 'entropy' }], ['ets-dacp-com', {}], ['dacp', { budget: 0.5 }],
];
const SAMPLINGS = ['hard', 'soft'];

/** The chosen ids, in selection order (<run_dir>/selection/ids.txt). */
function selectedIds(runDir: string): string[] {
  return readFileSync(path.join(runDir, 'selection', 'ids.txt'), 'utf8').split('\n').filter(Boolean);
}

/** Every selection of one configuration: ids in order and the score table it sampled from. */
async function study(tag: string, score: (recipes: Recipe[]) => Promise<void>): Promise<Map<string, { ids: string[]; scores: string }>> {
  rmSync(path.join(base.dir, 'prepared', 'scores'), { recursive: true, force: true });
  const recipes: Recipe[] = [];
  for (const [m, sel] of METHODS) for (const sampling of m === 'dacp' ? ['hard'] : SAMPLINGS) recipes.push(await recipe(tag, m, { ...sel, sampling }));
  await score(recipes);
  const out = new Map<string, { ids: string[]; scores: string }>();
  for (const r of recipes) {
    const res = await runSelection(r);
    const s = await readScores(res.scores!);
    out.set(r.name.slice(tag.length), { ids: selectedIds(r.run_dir), scores: JSON.stringify([s.ids, [...s.tokens], Object.entries(s.scores).map(([m, c]) => [m, [...c]])]) });
  }
  return out;
}

describe('scoring on workers', { timeout: 600_000 }, () => {
  it('1, 2 and 3 workers (any order, one killed and rerun) select bitwise what one process selects', async () => {
    const single = await study('one', async () => {});
    const corpus = await prepareCorpus((await recipe('x', 'dacp')).data.corpus, path.join(base.dir, 'prepared'), { shardMb: 0.25 });
    expect(corpus.shards.length).toBeGreaterThanOrEqual(4); // every worker has shards, some two

    // The workers of the com recipe score all three metrics' tables; DACP's worker its token counts.
    const workers = (n: number, order: number[], kill?: number) => async (recipes: Recipe[]) => {
      const scorers = recipes.filter((r) => r.method === 'ets-dacp-com' || r.method === 'dacp').filter((r, i, a) => a.findIndex((x) => x.method === r.method) === i);
      for (const r of scorers) {
        for (const i of order) {
          if (i === kill) {
            await expect(runSelectionWorker(r, { index: i, count: n }, { onShardDone: () => { throw new Error('killed'); } })).rejects.toThrow('killed');
            const rerun = await runSelectionWorker(r, { index: i, count: n });
            expect(rerun.scored).toBeLessThan(rerun.owned * rerun.tables.length); // the killed run's finished shard is kept
          } else {
            const w = await runSelectionWorker(r, { index: i, count: n });
            expect(w.owned).toBe(Math.ceil((corpus.shards.length - i) / n));
          }
        }
      }
    };
    const two = await study('two', workers(2, [1, 0]));
    const three = await study('three', workers(3, [2, 0, 1], 1));
    expect([...single.keys()].length).toBe(9);
    for (const [name, want] of single) {
      expect(two.get(name), name).toEqual(want);
      expect(three.get(name), name).toEqual(want);
    }
  });

  it('a worker with another worker count, scoring setting or corpus is refused with one line naming it; other recipe edits join', async () => {
    // Its own prepared corpus: nothing scored yet (a merged table leaves a worker nothing to do).
    const own = { prepared_dir: path.join(base.dir, 'prepared-job') };
    const r = await recipe('job', 'eta-dacp', { metric: 'entropy', sampling: 'hard' }, own);
    await prepareCorpus(r.data.corpus, r.data.prepared_dir, { shardMb: r.data.shard_mb });
    await runSelectionWorker(r, { index: 0, count: 2 });
    await expect(runSelectionWorker(r, { index: 1, count: 3 })).rejects.toThrow(/differs from the scoring job in .*workers\.json .* in the worker count \(3, the job's 2\)/);
    // B17/B18: an edit that does not change the scores (the budget) joins the job; one that does
    // is refused naming the recipe key and both values.
    const other = await recipe('job', 'eta-dacp', { metric: 'entropy', sampling: 'hard', budget: 0.2 }, own);
    await runSelectionWorker(other, { index: 1, count: 2 });
    const fin = await recipe('job', 'eta-dacp', { metric: 'entropy', sampling: 'hard' }, { ...own, fin_test_fraction: 0.1 });
    await expect(runSelectionWorker(fin, { index: 1, count: 2 })).rejects.toThrow(/in data\.fin_test_fraction \(0\.1, the job's 0\.05\);/);
    const moved = await recipe('job', 'eta-dacp', { metric: 'entropy', sampling: 'hard' }, { prepared_dir: path.join(base.dir, 'prepared-2'), shard_mb: 0.5 });
    await prepareCorpus(moved.data.corpus, moved.data.prepared_dir, { shardMb: moved.data.shard_mb });
    await expect(runSelectionWorker(moved, { index: 1, count: 2 })).rejects.toThrow(/in the prepared corpus \(fingerprint/);
    // The merge ends the job: the next workers may use another count.
    await runSelection(r);
    expect(existsSync(path.join(r.run_dir, 'selection', 'workers.json'))).toBe(false);
    // B56: a worker after the merge (or against a run that trained) has nothing to score and
    // leaves no job record behind.
    expect((await runSelectionWorker(r, { index: 0, count: 3 })).scored).toBe(0);
    expect(existsSync(path.join(r.run_dir, 'selection', 'workers.json'))).toBe(false);
    expect(() => parseWorker('2/2')).toThrow(/--worker: expected I\/N with 0 <= I < N/);
    const unprepared = await recipe('job', 'eta-dacp', { metric: 'entropy', sampling: 'hard' }, { prepared_dir: path.join(base.dir, 'never') });
    await expect(runSelectionWorker(unprepared, { index: 0, count: 2 })).rejects.toThrow(/not prepared, or its sources changed since; run `cpt prepare/);
  });

  it('cpt select --workers 2 runs two processes and merges; --emit writes Slurm scripts and valid Kubernetes Jobs, refusing a recipe with paths off the shared volume', async () => {
    const cliData = { prepared_dir: path.join(base.dir, 'prepared-cli') }; // scores of its own: the workers must score
    const r = await recipe('cli', 'eta-dacp', { metric: 'entropy', sampling: 'soft' }, cliData);
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', r.file, ...args], { encoding: 'utf8', cwd: ROOT });
    const w = cli('--workers', '2');
    expect(w.stderr).toMatch(/worker 0\/2|2 workers scored/);
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/^selected: eta-dacp \[entropy, soft\]/m);
    expect(w.stdout).toMatch(/^\[worker 1\/2\] worker 1\/2: scored [1-9]\d* of its/m);
    // Each worker's lines are labelled, and none tells the user to run the merge this run does itself.
    expect(w.stdout).not.toMatch(/when every worker has finished/);
    const ref = await recipe('cli-ref', 'eta-dacp', { metric: 'entropy', sampling: 'soft' }, cliData);
    await runSelection(ref, { rescore: true });
    expect(selectedIds(r.run_dir)).toEqual(selectedIds(ref.run_dir));

    const s = cli('--emit', 'slurm', '--workers', '3');
    expect(s.status, s.stderr).toBe(0);
    const dir = path.join(r.run_dir, 'launch');
    const array = readFileSync(path.join(dir, 'select-workers.sbatch'), 'utf8');
    expect(array).toContain('#SBATCH --array=0-2');
    expect(array).toMatch(/select '.*' --worker "\$SLURM_ARRAY_TASK_ID\/3"/);
    expect(readFileSync(path.join(dir, 'submit-slurm.sh'), 'utf8')).toMatch(/--dependency=afterany:\$workers select-merge\.sbatch/);
    // B35: paths quoted, node from $CPT_NODE or PATH (not this host's path), cpus and a time placeholder.
    expect(array).toMatch(/^#SBATCH --output=".*\/logs\/%x-%A_%a\.out"$/m);
    expect(array).toMatch(/^"\$\{CPT_NODE:-node\}" /m);
    expect(array).toMatch(/^#SBATCH --cpus-per-task=\d+$/m);
    expect(array).toMatch(/^##SBATCH --time=/m);
    for (const f of ['select-prepare.sbatch', 'select-workers.sbatch', 'select-merge.sbatch', 'submit-slurm.sh']) expect(spawnSync('bash', ['-n', path.join(dir, f)]).status).toBe(0);

    // B12: this recipe lives in the temp dir, outside the volume that holds checkout and data kit;
    // its pods would write to their own disks. Refused, naming the keys.
    const outside = cli('--emit', 'k8s', '--workers', '3', '--pvc', 'fin-data');
    expect(outside.status).toBe(1);
    expect(outside.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^cpt: --emit k8s: file ${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, .* and \\d+ more are outside the shared volume mounted at /`))]);
    // A recipe whose every path is on the volume (here: under the checkout).
    mkdirSync(path.join(ROOT, 'checkpoints'), { recursive: true });
    const onVolume = await writeTinyRecipe({ name: 'k8s', dir: mkdtempSync(path.join(ROOT, 'checkpoints', 'k8s-')) });
    onTestFinished(() => rmSync(onVolume.dir, { recursive: true, force: true }));
    const k = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', onVolume.file, '--emit', 'k8s', '--workers', '3', '--pvc', 'fin-data'], { encoding: 'utf8', cwd: ROOT });
    expect(k.status, k.stderr).toBe(0);
    const kdir = path.join(onVolume.runDir, 'launch');
    for (const what of ['prepare', 'workers', 'merge']) {
      const docs = parseAllDocuments(readFileSync(path.join(kdir, `select-${what}.k8s.yaml`), 'utf8')).map((d) => d.toJS());
      expect(docs.length).toBe(1);
      new Job(docs[0]).validate(); // throws on a schema violation
      expect(docs[0].spec.template.spec.volumes[0].persistentVolumeClaim.claimName).toBe('fin-data');
      if (what === 'workers') {
        expect(docs[0].spec).toMatchObject({ completionMode: 'Indexed', completions: 3, parallelism: 3 });
        expect(docs[0].spec.template.spec.containers[0].command[2]).toMatch(/--worker "\$JOB_COMPLETION_INDEX\/3"/);
      }
    }
    expect(() => new Job({ ...(parseAllDocuments(readFileSync(path.join(kdir, 'select-merge.k8s.yaml'), 'utf8'))[0]!.toJS()), spec: { completions: 'all' } }).validate()).toThrow();
    // B11: names Kubernetes would refuse are refused here, in one line.
    for (const [flag, v] of [['--pvc', 'Fin_Data'], ['--image', 'node 20']]) {
      const bad = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', onVolume.file, '--emit', 'k8s', '--workers', '3', flag, v], { encoding: 'utf8', cwd: ROOT });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(new RegExp(`^cpt: ${flag}: "${v}" is not a valid`));
    }
    // The submit script against a fake kubectl: Jobs replaced on a rerun, a failed Job stops it.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'cpt-kubectl-'));
    const calls = path.join(bin, 'calls');
    writeFileSync(path.join(bin, 'kubectl'), `#!/bin/sh\necho "$*" >> ${calls}\ncase "$*" in get*workers*) echo Failed ;; get*) echo Complete ;; esac\n`);
    chmodSync(path.join(bin, 'kubectl'), 0o755);
    const sub = spawnSync('bash', [path.join(kdir, 'submit-k8s.sh')], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    expect(sub.status).toBe(1);
    expect(sub.stderr).toMatch(/job cpt-k8s-workers failed: kubectl describe job cpt-k8s-workers/);
    const log = readFileSync(calls, 'utf8').trim().split('\n');
    expect(log.slice(0, 2)).toEqual(['delete job cpt-k8s-prepare --ignore-not-found --wait=true', 'apply -f select-prepare.k8s.yaml']);
    expect(log.some((l) => l.includes('select-merge'))).toBe(false);
  });

  it('a worker still scoring when the merge ran leaves no orphan parts behind it (B20)', async () => {
    const r = await recipe('orphans', 'eta-dacp', { metric: 'entropy', sampling: 'hard' }, { shard_mb: 0.2, prepared_dir: path.join(base.dir, 'prepared-orphans') });
    await prepareCorpus(r.data.corpus, r.data.prepared_dir, { shardMb: r.data.shard_mb });
    let table = '';
    const res = await runSelectionWorker(r, { index: 0, count: 1 }, {
      // After the worker's first shard, the merge happens (as another process would do it): the
      // merged table's meta appears and the parts go.
      onShardDone: (i) => {
        if (i !== 0) return;
        table = readdirSync(path.join(r.data.prepared_dir, 'scores')).map((d) => path.join(r.data.prepared_dir, 'scores', d)).find((d) => d.includes('entropy-'))!;
        writeFileSync(path.join(table, 'scores.json'), '{}');
        rmSync(path.join(table, 'parts'), { recursive: true, force: true });
      },
    });
    expect(res.owned).toBeGreaterThan(1);
    expect(res.scored).toBe(1); // it stopped after the merge
    expect(existsSync(path.join(table, 'parts'))).toBe(false);
  });

  it('more workers than shards is said (B84), and the selection still completes', async () => {
    const t = await writeTinyRecipe({ name: 'few-shards', method: 'ets-dacp', dir: base.dir, overrides: { selection: { budget: 0.1 }, data: { shard_mb: 64, prepared_dir: path.join(base.dir, 'prepared-one-shard') } } });
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', t.file, '--workers', '3'], { encoding: 'utf8', cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('note: 3 workers for 1 shard: 2 will have nothing to score (a smaller data.shard_mb makes more shards)');
  });

  it('SIGTERM to cpt select --workers stops its workers too (B74): exit 143, no worker left running', async () => {
    const t = await writeTinyRecipe({ name: 'sigterm', method: 'eta-dacp', dir: base.dir, reutersFiles: FILES, overrides: { selection: { metric: 'perplexity', budget: 0.1 }, data: { shard_mb: 0.2, prepared_dir: path.join(base.dir, 'prepared-sigterm') }, engine: { kind: 'tfjs', threads: 1 } } });
    const parent = spawn(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', t.file, '--workers', '2'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    parent.stderr!.on('data', (d: Buffer) => (err += d));
    const workers = () => spawnSync('pgrep', ['-f', `${t.file} --worker [0-9]`], { encoding: 'utf8' }).stdout.trim();
    for (let i = 0; i < 600 && !workers(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(workers()).not.toBe('');
    await new Promise((r) => setTimeout(r, 1000)); // the workers are scoring
    parent.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => parent.on('exit', (c) => r(c)));
    expect(code, err).toBe(143);
    expect(workers()).toBe('');
    expect(err).toContain('cpt select: stopped by SIGTERM; the 2 workers stopped too');
  });

  if (!slurmAvailable) console.log(`skipped: the Slurm test ${SLURM_MISSING}`);
  it.skipIf(!slurmAvailable)('Slurm: the emitted job array runs under sbatch on a one-node cluster; with a task cancelled the merge still runs, a resubmitted task finds nothing left, and the selection equals one process\'s', async () => {
    const env = startCluster(path.join(base.dir, 'slurm'));
    const data = { prepared_dir: path.join(base.dir, 'prepared-slurm') };
    const r = await recipe('slurm', 'ets-dacp', { sampling: 'soft' }, data);
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', r.file, ...args], { encoding: 'utf8', cwd: ROOT, env });
    expect(cli('--emit', 'slurm', '--workers', '2').status).toBe(0);
    const submit = spawnSync('bash', [path.join(r.run_dir, 'launch', 'submit-slurm.sh')], { encoding: 'utf8', env });
    expect(submit.status, submit.stderr).toBe(0);
    const [, workers, merge] = /workers (\d+), merge (\d+)/.exec(submit.stdout)!;
    // Task 1 of the array never runs (cancelled while it waits for prepare): the merge, which
    // waits for the array however it ended (afterany), still runs and scores what task 1 left.
    expect(spawnSync('scancel', [`${workers}_1`], { encoding: 'utf8', env }).status).toBe(0);
    const waitFor = (job: string) => until(`job ${job}`, () => !queued(job, env));
    await waitFor(merge);
    const logs = path.join(r.run_dir, 'launch', 'logs');
    const read = () => readdirSync(logs).map((f) => readFileSync(path.join(logs, f), 'utf8')).join('\n');
    expect(read()).toMatch(/worker 0\/2: scored [1-9]/);
    expect(read()).not.toMatch(/worker 1\/2/);
    expect(read()).toMatch(/^selected: ets-dacp \[similarity, soft\]/m);
    // Task 1 resubmitted alone afterwards (sbatch --array=1) finds nothing left and exits 0.
    const again = spawnSync('sbatch', ['--parsable', '--array=1', path.join(r.run_dir, 'launch', 'select-workers.sbatch')], { encoding: 'utf8', env });
    expect(again.status, again.stderr).toBe(0);
    await waitFor(again.stdout.trim());
    expect(read()).toMatch(/worker 1\/2: scored 0 of its \d+ shards/);
    const ref = await recipe('slurm-ref', 'ets-dacp', { sampling: 'soft' }, data);
    await runSelection(ref, { rescore: true });
    expect(selectedIds(r.run_dir)).toEqual(selectedIds(ref.run_dir));
  });
});
