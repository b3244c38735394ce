/**
 * `npm run reproduce`: the paper's comparison at small scale, end to end (recipes/repro/*.yaml).
 *   1. the base model (recipes/repro/base.yaml): pythia-14m shape pre-trained on the general corpus;
 *   2. from it, one epoch each: DACP, TACP, and ETS-DACP / ETA-DACP (perplexity, entropy) /
 *      ETS-DACP-com at a 10% budget with hard and soft sampling;
 *   3. every model: final Fin-test and Pile-test loss, FPB / FiQA-SA / Headline / NER and ARC-Easy;
 *   4. checkpoints/repro/results.md (base model first) and loss plots of all runs overlaid.
 * Resumable as a whole: finished runs and evaluations are skipped; an interrupted run resumes.
 * Options: --only a,b  --eval-limit N (examples per task; default 100)  --no-eval
 *          --recipes DIR (default recipes/repro)  --out DIR (default checkpoints/repro)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadRecipe } from '../src/recipe/load.js';
import { readMetrics, type MetricRecord } from '../src/monitor/metrics.js';
import { readResults, type ResultsFile } from '../src/eval/results.js';
import { plotRuns } from '../src/monitor/plot.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { fmtDuration } from '../src/util/progress.js';
import { ROOT } from '../src/util/paths.js';

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    'eval-limit': { type: 'string', default: '100' },
    'no-eval': { type: 'boolean', default: false },
    recipes: { type: 'string', default: path.join(ROOT, 'recipes', 'repro') },
    out: { type: 'string', default: path.join(ROOT, 'checkpoints', 'repro') },
  },
});
const REPRO = path.resolve(opt.recipes);
const OUT = path.resolve(opt.out);
const TASKS = ['fpb', 'fiqa_sa', 'headline', 'ner', 'arc_easy'];
const ORDER = ['base', 'dacp', 'tacp', 'ets-dacp-hard', 'ets-dacp-soft', 'eta-dacp-ppl-hard', 'eta-dacp-ppl-soft',
  'eta-dacp-ent-hard', 'eta-dacp-ent-soft', 'ets-dacp-com-hard', 'ets-dacp-com-soft'];

const only = opt.only ? new Set(opt.only.split(',')) : undefined;
const names = ORDER.filter((n) => existsSync(path.join(REPRO, `${n}.yaml`)) && (!only || only.has(n) || n === 'base'));

/**
 * Wall seconds of every stage (selection + training, evaluation), summed over invocations so a
 * study that was interrupted and resumed still reports what it cost in all.
 */
type Stage = 'train' | 'eval';
const LEDGER = path.join(OUT, 'timings.json');
const ledger: Record<string, Partial<Record<Stage, number>>> = existsSync(LEDGER) ? JSON.parse(readFileSync(LEDGER, 'utf8')) : {};

async function cpt(name: string, stage: Stage, args: string[]): Promise<void> {
  const t = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), ...args], { stdio: 'inherit', cwd: ROOT });
  // Recorded even when the stage fails: an interrupted stage's time is part of the study's cost.
  (ledger[name] ??= {})[stage] = (ledger[name][stage] ?? 0) + (Date.now() - t) / 1000;
  await writeFileAtomic(LEDGER, JSON.stringify(ledger, null, 2) + '\n');
  if (r.status !== 0) throw new Error(`cpt ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

const t0 = Date.now();
const runDirs = new Map<string, string>();
for (const name of names) {
  const file = path.join(REPRO, `${name}.yaml`);
  const recipe = await loadRecipe(file);
  runDirs.set(name, recipe.run_dir);
  const final = path.join(recipe.run_dir, 'final');
  if (existsSync(path.join(final, 'config.json'))) {
    console.log(`== ${name}: trained (${final})`);
  } else {
    const resume = existsSync(recipe.run_dir) && readdirSync(recipe.run_dir).some((f) => /^step-\d+$/.test(f));
    console.log(`== ${name}: training${resume ? ' (resuming)' : ''}`);
    await cpt(name, 'train', ['train', file, ...(resume ? ['--resume', 'auto'] : [])]);
  }
  if (opt['no-eval']) continue;
  const evalFile = path.join(OUT, 'eval', `${name}.json`);
  if (existsSync(evalFile)) console.log(`== ${name}: evaluated (${evalFile})`);
  else {
    console.log(`== ${name}: evaluating ${TASKS.join(', ')}`);
    await cpt(name, 'eval', ['eval', '--model', final, '--tasks', TASKS.join(','), '--limit', String(opt['eval-limit']), '--out', evalFile]);
  }
}

// ---- results table: base model first, then each run, with its tokens and wall time
const metricsOf = (n: string): MetricRecord[] => {
  const f = path.join(runDirs.get(n)!, 'metrics.jsonl');
  return existsSync(f) ? readMetrics(f) : [];
};
const lastWith = (m: MetricRecord[], k: 'fin_test' | 'pile_test') => [...m].reverse().find((r) => r[k] !== null)?.[k] ?? null;
/** The base model's held-out losses are step 0 of any continued run (same Fin-test / Pile-test rows). */
const baseStart = names.filter((n) => n !== 'base').map((n) => metricsOf(n).find((r) => r.step === 0)).find((r) => r);

const evals = new Map<string, ResultsFile>();
for (const n of names) {
  const f = path.join(OUT, 'eval', `${n}.json`);
  if (existsSync(f)) evals.set(n, await readResults(f));
}
const metricFor: Record<string, string> = { fpb: 'f1_weighted', fiqa_sa: 'f1_weighted', headline: 'f1_weighted', ner: 'entity_f1', arc_easy: 'acc_norm' };
const score = (n: string, task: string): string => {
  const row = evals.get(n)?.results.find((r) => r.task === task && r.metric === metricFor[task]);
  return row ? (100 * row.value).toFixed(1) : '-';
};
const f3 = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(3));

const studySeconds = names.reduce((a, n) => a + (ledger[n]?.train ?? 0) + (ledger[n]?.eval ?? 0), 0);
const header = ['run', 'train tokens', 'select + train', 'eval', 'Fin-test loss', 'Pile-test loss', ...TASKS.map((t) => `${t} (${metricFor[t]})`)];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const n of names) {
  const m = metricsOf(n);
  const last = m[m.length - 1];
  const isBase = n === 'base';
  const fin = isBase ? baseStart?.fin_test : lastWith(m, 'fin_test');
  const pile = isBase ? baseStart?.pile_test : lastWith(m, 'pile_test');
  const t = ledger[n] ?? {};
  const cells = [isBase ? 'base (general corpus)' : n, last ? String(last.tokens) : '-', t.train !== undefined ? fmtDuration(t.train) : '-',
    t.eval !== undefined ? fmtDuration(t.eval) : '-', f3(fin), f3(pile),
    ...TASKS.map((t) => score(n, t))];
  lines.push(`| ${cells.join(' | ')} |`);
}
const note = `Generated by \`npm run reproduce\` (eval limit ${opt['eval-limit']} examples per task; F1 and accuracy in %). ` +
  `The base row's losses are measured on the same Fin-test / Pile-test rows as the continued runs (their step 0). ` +
  `"select + train" is the whole \`cpt train\` (corpus preparation, scoring and selection, training, monitoring); "eval" the whole \`cpt eval\`. ` +
  `Whole study: ${fmtDuration(studySeconds)} (sum of the stage times in ${path.relative(ROOT, LEDGER)}, over every invocation); this invocation: ${fmtDuration((Date.now() - t0) / 1000)}.`;
await writeFileAtomic(path.join(OUT, 'results.md'), `${lines.join('\n')}\n\n${note}\n`);
console.log(`\n${lines.join('\n')}\n\n${note}`);

const continued = names.filter((n) => n !== 'base' && metricsOf(n).length).map((n) => runDirs.get(n)!);
if (continued.length) {
  // One colour per method, one dash per sampling; symlog x so the 10% runs are not squeezed against DACP's 100%.
  const style = (run: string) => {
    const m = /^(.*)-(hard|soft)$/.exec(run);
    return m ? { color: m[1], dash: m[2] } : { color: run, dash: 'none (whole set)' };
  };
  const p = await plotRuns(continued, { out: path.join(OUT, 'plots'), x: 'tokens', train: false, logX: true, style });
  console.log(`plots: ${p.svg}, ${p.png}`);
}
