/**
 * `npm run reproduce`: the paper's comparison at small scale, end to end (recipes/repro/*.yaml).
 *   1. the base model (recipes/repro/base.yaml): pythia-14m shape pre-trained on the general corpus;
 *   2. from it, one epoch each: DACP, TACP, and ETS-DACP / ETA-DACP (perplexity, entropy) /
 *      ETS-DACP-com at a 10% budget with hard and soft sampling; with --seeds N, TACP and every
 *      10% run N times with other data-order and sampling seeds (the base and DACP once);
 *   3. every model: Fin-test, Pile-test and task-test losses, linear probes (FPB / FiQA-SA /
 *      Headline), the prompted tasks with their continuous likelihood metrics, and ARC-Easy;
 *   4. checkpoints/repro/results.md (mean ± std over seeds), loss plots of the seed-1 runs and a
 *      per-task plot with error bars.
 * Resumable as a whole: finished runs and evaluations are skipped; an interrupted run resumes.
 * Options: --seeds N (default 1)  --once a,b (methods trained once whatever --seeds says; default base,dacp)
 *          --jobs N (runs at once, cores split among them; default 1)
 *          --only a,b  --eval-limit L (cpt eval --limit; default 100,ner=30)  --probe-limit N
 *          --no-eval  --report (only write the tables and plots from what exists)
 *          --precision fp32|bf16 (matmul precision of every run and evaluation; default: the recipes'
 *          own, fp32; bf16 runs on AMX or AVX512-BF16 and falls back to fp32 elsewhere; the loss
 *          table says what each run used)
 *          --recipes DIR (default recipes/repro)  --out DIR (default checkpoints/repro)
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { loadRecipe } from '../src/recipe/load.js';
import type { Recipe } from '../src/recipe/types.js';
import { readMetrics, type MetricRecord } from '../src/monitor/metrics.js';
import { readResults } from '../src/eval/results.js';
import { plotRuns } from '../src/monitor/plot.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { fmtDuration } from '../src/util/progress.js';
import { ROOT } from '../src/util/paths.js';
import { FIN_TASKS } from '../src/data/tasks/index.js';
import { methodMetrics } from '../src/recipe/names.js';
import { listCheckpoints } from '../src/train/checkpoint-store.js';
import { runPool, type Job } from './repro/pool.js';
import { lossTable, plotTasks, taskTable, type RunResult } from './repro/table.js';

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    seeds: { type: 'string', default: '1' },
    once: { type: 'string', default: 'base,dacp' },
    jobs: { type: 'string', default: '1' },
    'eval-limit': { type: 'string', default: '100,ner=30' },
    'probe-limit': { type: 'string' },
    precision: { type: 'string' },
    'no-eval': { type: 'boolean', default: false },
    report: { type: 'boolean', default: false },
    recipes: { type: 'string', default: path.join(ROOT, 'recipes', 'repro') },
    out: { type: 'string', default: path.join(ROOT, 'checkpoints', 'repro') },
  },
});
const posInt = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected an integer >= 1, got "${v}"`);
  return n;
};
const SEEDS = posInt('seeds', opt.seeds!);
if (opt.precision !== undefined && opt.precision !== 'fp32' && opt.precision !== 'bf16') throw new Error(`--precision: expected fp32 or bf16, got "${opt.precision}"`);
// Evaluations take the engine's default precision, which this sets for every child.
if (opt.precision) process.env.CPT_NATIVE_PRECISION = opt.precision;
const precisionArgs = opt.precision ? ['--precision', opt.precision] : [];
const LANES = posInt('jobs', opt.jobs!);
const REPRO = path.resolve(opt.recipes!);
const OUT = path.resolve(opt.out!);
const TASKS = [...FIN_TASKS, 'arc_easy'];
const ORDER = ['base', 'dacp', 'tacp', 'ets-dacp-hard', 'ets-dacp-soft', 'eta-dacp-ppl-hard', 'eta-dacp-ppl-soft',
  'eta-dacp-ent-hard', 'eta-dacp-ent-soft', 'ets-dacp-com-hard', 'ets-dacp-com-soft'];
/** Trained once whatever --seeds says: by default the base, and DACP (one epoch over everything; its data order matters least). */
const ONCE = new Set(['base', ...opt.once!.split(',')]);

const only = opt.only ? new Set(opt.only.split(',')) : undefined;
const methods = ORDER.filter((n) => existsSync(path.join(REPRO, `${n}.yaml`)) && (!only || only.has(n) || n === 'base'));

/** One model of the study: a method (recipe name) and a seed number (1 = the recipe as written). */
interface Run { id: string; method: string; seed: number; file: string; recipe: Recipe }

/** Seed k of a recipe: train.seed and selection.seed moved by 1000·(k−1), its own run directory. */
async function seededFile(method: string, file: string, recipe: Recipe, k: number): Promise<string> {
  if (k === 1) return file;
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const offset = 1000 * (k - 1);
  doc.setIn(['name'], `${recipe.name}-seed${k}`);
  if (doc.hasIn(['run_dir'])) doc.setIn(['run_dir'], `${String(doc.getIn(['run_dir']))}-seed${k}`);
  doc.setIn(['train', 'seed'], recipe.train.seed + offset);
  if (doc.hasIn(['selection'])) doc.setIn(['selection', 'seed'], recipe.selection.seed + offset);
  doc.commentBefore = ` Generated by npm run reproduce from ${path.relative(ROOT, file)}: seed ${k} (train.seed and selection.seed + ${offset}).`;
  const out = path.join(OUT, 'recipes', `${method}-seed${k}.yaml`);
  const text = doc.toString({ lineWidth: 0 });
  if (!existsSync(out) || readFileSync(out, 'utf8') !== text) await writeFileAtomic(out, text);
  return out;
}

const runs: Run[] = [];
for (let k = 1; k <= SEEDS; k++) {
  for (const method of methods) {
    if (k > 1 && ONCE.has(method)) continue;
    const file = path.join(REPRO, `${method}.yaml`);
    const base = await loadRecipe(file);
    const seeded = await seededFile(method, file, base, k);
    runs.push({ id: k === 1 ? method : `${method}-seed${k}`, method, seed: k, file: seeded, recipe: k === 1 ? base : await loadRecipe(seeded) });
  }
}

/**
 * Wall seconds of every stage (selection + training, evaluation) per run, summed over invocations
 * so a study that was interrupted and resumed still reports what it cost in all.
 */
type Stage = 'train' | 'eval';
const LEDGER = path.join(OUT, 'timings.json');
const ledger: Record<string, Partial<Record<Stage, number>>> = existsSync(LEDGER) ? JSON.parse(readFileSync(LEDGER, 'utf8')) : {};
const record = (id: string, stage: Stage) => async (seconds: number) => {
  // Recorded even when the stage fails: an interrupted stage's time is part of the study's cost.
  (ledger[id] ??= {})[stage] = (ledger[id][stage] ?? 0) + seconds;
  await writeFileAtomic(LEDGER, JSON.stringify(ledger, null, 2) + '\n');
};
const evalFile = (r: Run) => path.join(OUT, 'eval', `${r.id}.json`);
const trained = (r: Run) => existsSync(path.join(r.recipe.run_dir, 'final', 'config.json'));

/**
 * What a run's training shares with other runs: its prepared corpus (prepared once, by a job of its
 * own, before any run reads it) and its score tables (made by the first run in the order below
 * that needs one; the others wait for that run, so two processes never score the same table).
 */
function scoreKeys(r: Recipe): string[] {
  return methodMetrics(r.method, r.selection.metric).map((m) => `${r.data.prepared_dir}#${m}`);
}
/** Seed by seed, so a study stopped early has whole seeds. */
const byOrder = [...runs].sort((a, b) => a.seed - b.seed || ORDER.indexOf(a.method) - ORDER.indexOf(b.method));

const cpt = path.join(ROOT, 'scripts', 'cpt.mjs');
const threadArgs = (t: number | undefined) => (t === undefined ? [] : ['--threads', String(t)]);
const jobs: Job[] = [];
const trainJob = new Map<string, Job>();
const producer = new Map<string, Job>();
const prepareJob = new Map<string, Job>();
let baseJob: Job | undefined;
for (const r of byOrder) {
  if (trained(r)) console.log(`== ${r.id}: trained (${path.join(r.recipe.run_dir, 'final')})`);
  else {
    const corpus = r.recipe.data.prepared_dir;
    if (!prepareJob.has(corpus)) {
      const job: Job = { id: `prepare-${path.basename(corpus)}`, title: `== preparing ${path.relative(ROOT, corpus)}`, deps: [], args: () => [cpt, 'prepare', r.file] };
      jobs.push(job);
      prepareJob.set(corpus, job);
    }
    const resume = listCheckpoints(r.recipe.run_dir).length > 0;
    const job: Job = {
      id: `${r.id}-train`,
      title: `== ${r.id}: training${resume ? ' (resuming)' : ''}`,
      deps: [prepareJob.get(corpus)!, ...(r.method !== 'base' && baseJob ? [baseJob] : []), ...scoreKeys(r.recipe).flatMap((k) => (producer.has(k) ? [producer.get(k)!] : []))],
      args: (t) => [cpt, 'train', r.file, ...(resume ? ['--resume', 'auto'] : []), ...threadArgs(t), ...precisionArgs],
      done: record(r.id, 'train'),
    };
    jobs.push(job);
    trainJob.set(r.id, job);
    if (r.method === 'base') baseJob = job;
    for (const k of scoreKeys(r.recipe)) if (!producer.has(k)) producer.set(k, job);
  }
  if (opt['no-eval']) continue;
  if (existsSync(evalFile(r))) console.log(`== ${r.id}: evaluated (${evalFile(r)})`);
  else {
    const probeLimit = opt['probe-limit'] ? ['--probe-limit', opt['probe-limit']] : [];
    jobs.push({
      id: `${r.id}-eval`,
      title: `== ${r.id}: evaluating ${TASKS.join(', ')}`,
      deps: trainJob.has(r.id) ? [trainJob.get(r.id)!] : [],
      args: (t) => [cpt, 'eval', '--model', path.join(r.recipe.run_dir, 'final'), '--tasks', TASKS.join(','), '--limit', opt['eval-limit']!,
        '--probe', ...probeLimit, '--batch', '16', '--out', evalFile(r), ...threadArgs(t)],
      done: record(r.id, 'eval'),
    });
  }
}
// A long job (DACP) is worth starting as soon as it can: ready jobs start in list order.
jobs.sort((a, b) => Number(b.id === 'dacp-train') - Number(a.id === 'dacp-train'));

const t0 = Date.now();
const cores = os.availableParallelism();
if (!opt.report) {
  console.log(`reproduce: ${runs.length} models (${methods.length} methods, ${SEEDS} seed${SEEDS > 1 ? 's' : ''}), ${jobs.length} jobs to run, ${LANES} at once on ${cores} cores`);
  await runPool(jobs, { command: process.execPath, cwd: ROOT, lanes: LANES, cores, logDir: path.join(OUT, 'logs') });
}
const wall = (Date.now() - t0) / 1000;

// ---- results
const metricsOf = (r: Run): MetricRecord[] => {
  const f = path.join(r.recipe.run_dir, 'metrics.jsonl');
  return existsSync(f) ? readMetrics(f) : [];
};
/** What the run's training engine was (its newest checkpoint's state.json): bf16 only when it really ran. */
const precisionOf = (r: Run): string | null => {
  for (const c of listCheckpoints(r.recipe.run_dir).reverse()) {
    const f = path.join(c.dir, 'state.json');
    if (existsSync(f)) return (JSON.parse(readFileSync(f, 'utf8')) as { engine?: string }).engine?.endsWith('-bf16') ? 'bf16' : 'fp32';
  }
  return null;
};
const lastWith = (m: MetricRecord[], k: 'fin_test' | 'pile_test') => [...m].reverse().find((x) => x[k] !== null)?.[k] ?? null;
/** The base model's held-out losses are step 0 of any continued run (same Fin-test / Pile-test rows). */
const baseStart = runs.filter((r) => r.method !== 'base').map((r) => metricsOf(r).find((x) => x.step === 0)).find((x) => x);
// Only finished runs: a run still training (or stopped) would show its first steps as a result.
const results: RunResult[] = [];
for (const r of runs.filter(trained)) {
  const m = metricsOf(r);
  const isBase = r.method === 'base';
  results.push({
    method: r.method,
    seed: r.seed,
    tokens: m.length ? m[m.length - 1]!.tokens : null,
    precision: precisionOf(r),
    trainSeconds: ledger[r.id]?.train ?? null,
    evalSeconds: ledger[r.id]?.eval ?? null,
    finTest: (isBase ? baseStart?.fin_test : lastWith(m, 'fin_test')) ?? null,
    pileTest: (isBase ? baseStart?.pile_test : lastWith(m, 'pile_test')) ?? null,
    eval: existsSync(evalFile(r)) ? await readResults(evalFile(r)) : undefined,
  });
}

const stageSum = runs.reduce((a, r) => a + (ledger[r.id]?.train ?? 0) + (ledger[r.id]?.eval ?? 0), 0);
const engine = results.find((r) => r.eval)?.eval?.engine ?? 'see the runs\' logs';
const note = `Generated by \`npm run reproduce -- --seeds ${SEEDS} --once ${opt.once} --jobs ${LANES}${opt.only ? ` --only ${opt.only}` : ''}${opt.precision ? ` --precision ${opt.precision}` : ''}\` on ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'} (${cores} cores), engine ${engine}. ` +
  `Mean ± sample std over seeds where a run has several (column "seeds"); ${[...ONCE].join(', ')} trained once. ` +
  `Fin-test / Pile-test: final monitor losses (the base row: step 0 of the continued runs, the same rows); task-test: \`cpt eval\` on each task's whole test split; ` +
  `probe: logistic regression on frozen mean-pooled hidden states, weighted F1 in % on ${opt['probe-limit'] ? `${opt['probe-limit']} test examples` : 'the whole test split'}; ` +
  `prompted tasks (eval limit ${opt['eval-limit']}, F1 and accuracy in %, ties count as wrong) with the gold choice's log-probability per character and the normalised margin over the best wrong choice. ` +
  `Stage times are per run (mean over seeds); their sum is ${fmtDuration(stageSum)} over every invocation (${path.relative(ROOT, LEDGER)})${opt.report ? '' : `; this invocation took ${fmtDuration(wall)} wall`}.`;
const shown = methods.filter((m) => results.some((r) => r.method === m));
const text = `### Losses\n\n${lossTable(shown, results)}\n\n### Tasks\n\n${taskTable(shown, results)}\n\n${note}\n`;
await writeFileAtomic(path.join(OUT, 'results.md'), text);
console.log(`\n${text}`);

const seed1 = runs.filter((r) => r.method !== 'base' && r.seed === 1 && trained(r));
if (seed1.length) {
  // One colour per method, one dash per sampling; symlog x so the 10% runs are not squeezed against DACP's 100%.
  const style = (run: string) => {
    const m = /^(.*)-(hard|soft)$/.exec(run);
    return m ? { color: m[1]!, dash: m[2]! } : { color: run, dash: 'none (whole set)' };
  };
  const p = await plotRuns(seed1.map((r) => r.recipe.run_dir), { out: path.join(OUT, 'plots'), x: 'tokens', train: false, logX: true, style });
  console.log(`plots: ${p.svg}, ${p.png}`);
}
const t = await plotTasks(shown, results, path.join(OUT, 'plots', 'tasks'));
if (t) console.log(`per-task plot: ${t.svg}, ${t.png}`);
