import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../util/errors.js';
import { dataDir } from '../util/paths.js';
import { writeFileAtomic } from '../util/atomic.js';
import { createEngine, defaultEngineKind, ENGINE_LIST, parseEngineKind, type Engine } from '../engine/index.js';
import { loadModel } from '../model/load.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { loadTaskConfig, builtinTasks } from '../eval/config.js';
import { runTask, taskSize } from '../eval/run.js';
import { PROBE_TASKS, probeTask } from '../eval/probe.js';
import { textLoss } from '../eval/text-loss.js';
import { FIN_TASKS, taskTexts } from '../data/tasks/index.js';
import type { FinTask } from '../recipe/types.js';
import { compareTable, modelLabel, readResults, resultRows, resultsName, type EvalSettings, type ResultsFile } from '../eval/results.js';
import { fmtDuration } from '../recipe/estimate.js';

interface EvalOpts {
  model?: string;
  tasks: string;
  shots?: string;
  limit?: string;
  seed: string;
  engine: string;
  batch: string;
  threads?: string;
  tokenizer?: string;
  out?: string;
  force?: boolean;
  compare?: string[];
  probe?: boolean;
  probeLimit?: string;
}

function intOpt(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

/** `--limit 100` or `--limit 100,ner=30`: a default for every task and overrides by task name. */
export function parseLimits(v: string | undefined, tasks: readonly string[]): (task: string) => number | undefined {
  if (v === undefined) return () => undefined;
  let fallback: number | undefined;
  const per = new Map<string, number>();
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(?:([\w.-]+)=)?(.*)$/.exec(part)!;
    const n = intOpt('limit', m[2], 1)!;
    if (m[1] === undefined) fallback = n;
    else if (!tasks.includes(m[1])) throw new UserError(`--limit: ${m[1]} is not one of the tasks (${tasks.join(', ')})`);
    else per.set(m[1], n);
  }
  return (task) => per.get(task) ?? fallback;
}

async function makeEngine(kind: string, model: Awaited<ReturnType<typeof loadModel>>, threads?: number): Promise<Engine> {
  let engine: Engine;
  if (kind === 'auto') {
    const k = await defaultEngineKind();
    if (k === 'tfjs') process.stderr.write('cpt eval: the native engine is unavailable; using the tfjs engine\n');
    engine = await createEngine(k, model.config, { threads });
  } else engine = await createEngine(parseEngineKind(kind), model.config, { threads });
  engine.loadWeights(model.weights);
  return engine;
}

/** The model directory's tokenizer.json, else the kit's GPT-NeoX-20B tokenizer. */
function tokenizerPath(modelArg: string, override?: string): string {
  if (override) return path.resolve(override);
  const own = path.join(modelArg, 'tokenizer.json');
  if (existsSync(own)) return own;
  return path.join(dataDir(), 'tokenizer', '20B_tokenizer.json');
}

async function evaluate(o: EvalOpts): Promise<void> {
  if (!o.model) throw new UserError('--model DIR is required (or --compare a.json b.json ...)');
  const known = await builtinTasks();
  const tasks = o.tasks.split(',').map((t) => t.trim()).filter(Boolean);
  if (!tasks.length) throw new UserError(`--tasks: expected a comma-separated list from ${known.join(', ')}`);
  const configs = await Promise.all(tasks.map((t) => loadTaskConfig(t)));
  const shots = intOpt('shots', o.shots, 0);
  const limitOf = parseLimits(o.limit, tasks);
  const probeLimit = intOpt('probe-limit', o.probeLimit, 1);
  const seed = intOpt('seed', o.seed, 0)!;
  const batch = intOpt('batch', o.batch, 1)!;
  const threads = intOpt('threads', o.threads, 0);
  // Fail before loading a model: tasks without a few-shot split (PIQA, LAMBADA) run 0-shot only.
  const noShots = configs.filter((c) => (shots ?? c.num_fewshot) > 0 && !c.fewshot_split).map((c) => c.task);
  if (noShots.length)
    throw new UserError(`--shots ${shots}: ${noShots.join(', ')} ha${noShots.length > 1 ? 've' : 's'} no few-shot split; leave --shots out to use each task's default (5 for the financial tasks, 0 for open-domain) or use --shots 0`);

  const model = await loadModel(o.model);
  const tokFile = tokenizerPath(o.model, o.tokenizer);
  const tok = await loadTokenizer(tokFile, { threads: 0 });
  if (tok.vocabSize > model.config.vocab_size)
    throw new UserError(`${tokFile}: tokenizer has ${tok.vocabSize} ids but the model's vocab_size is ${model.config.vocab_size}`);
  const engine = await makeEngine(o.engine, model, threads);
  const isDir = existsSync(o.model) && statSync(o.model).isDirectory();
  const settings: EvalSettings = { shots: shots ?? 'default', limit: o.limit ?? null, seed, probe: !!o.probe, probe_limit: probeLimit ?? null, engine: engine.name, tokenizer: tokFile };
  const out = path.resolve(o.out ?? (isDir ? path.join(o.model, resultsName(settings)) : `${resultsName(settings).replace(/\.json$/, '')}-${o.model}.json`));
  // A results file of the same settings continues: its finished tasks are kept, not rerun.
  const prior = !o.force && existsSync(out) ? await readResults(out).catch(() => null) : null;
  const resumed = prior && JSON.stringify(prior.settings) === JSON.stringify(settings) ? prior : null;
  const done = new Set((resumed?.done ?? []).filter((t) => configs.some((c) => c.task === t)));
  const rows: ResultsFile['results'] = resumed ? resumed.results.filter((r) => done.has(r.task)) : [];
  const todo = configs.map((c, i) => ({ c, limit: limitOf(tasks[i]!) })).filter(({ c }) => !done.has(c.task));
  process.stderr.write(`cpt eval: ${model.source} on ${engine.name}; tasks ${tasks.join(', ')}${o.limit ? `; limit ${o.limit}` : ''} → ${out}\n`);
  if (done.size) process.stderr.write(`cpt eval: continuing ${out}: ${[...done].join(', ')} done already (--force to rerun them)\n`);
  // The whole run's size up front, and an ETA from the rate measured so far after each task.
  const sizes = await Promise.all(todo.map(({ c, limit }) => taskSize(c, { dataDir: dataDir(), limit, seed })));
  const total = sizes.reduce((a, b) => a + b, 0);
  process.stderr.write(`cpt eval: ${total.toLocaleString('en-US')} test examples to score (${todo.map(({ c }, i) => `${c.task} ${sizes[i]}`).join(', ')})${o.limit ? '' : '; the whole test splits (the paper-grade run): --limit N scores a seeded sample for a quick look'}\n`);
  // An estimate before the run, from a warm-up of each task (prompt lengths differ by task and
  // shots): the time of 1 + WARM items less that of 1, per item scored (NER scores several spans
  // per sentence), so fixed per-call costs do not scale up.
  if (total > 0) {
    const WARM = 16;
    const timed = async (f: () => Promise<number>) => {
      const w0 = performance.now();
      const n = await f();
      return { n, s: (performance.now() - w0) / 1000 };
    };
    const perItem = async (f: (n: number) => Promise<number>) => {
      const one = await timed(() => f(1));
      const many = await timed(() => f(1 + WARM));
      return many.n > one.n && many.s > one.s ? (many.s - one.s) / (many.n - one.n) : many.s / Math.max(1, many.n);
    };
    let est = 0;
    for (const [i, { c, limit }] of todo.entries()) {
      const run = async (n: number) => (await runTask(c, engine, tok, { dataDir: dataDir(), shots, limit: Math.min(n, limit ?? n), seed, batch })).n;
      if (i === 0) await run(1); // the engine's first call: one-time costs
      est += (await perItem(run)) * sizes[i]!;
      if ((FIN_TASKS as readonly string[]).includes(c.dataset.loader)) {
        // and its task-test loss, over the whole test split's text
        const texts = await taskTexts(c.dataset.loader as FinTask, 'test', dataDir());
        const loss = async (n: number) => (textLoss(engine, tok, texts.slice(0, n), { batch, maxTokens: model.config.max_position_embeddings }), Math.min(n, texts.length));
        est += (await perItem(loss)) * texts.length;
      }
    }
    process.stderr.write(`cpt eval: about ${est < 1 ? 'a second' : fmtDuration(est)} for the ${total.toLocaleString('en-US')} examples and the task-test losses (from a timed warm-up of each task)\n`);
  }
  let scored = 0;
  const t0 = Date.now();
  let written = resumed; // the results file as last written (the summary prints it)

  try {
    for (const [i, cfg] of configs.entries()) {
      if (done.has(cfg.task)) continue;
      const limit = limitOf(tasks[i]!);
      const r = await runTask(cfg, engine, tok, { dataDir: dataDir(), shots, limit, seed, batch, progress: true });
      rows.push(...resultRows(r));
      if ((FIN_TASKS as readonly string[]).includes(cfg.dataset.loader)) {
        // Task-test loss: LM loss on the task's test-split text (ETS-DACP's target distribution).
        const t0 = Date.now();
        const texts = await taskTexts(cfg.dataset.loader as FinTask, 'test', dataDir());
        const tl = textLoss(engine, tok, texts, { batch, maxTokens: model.config.max_position_embeddings });
        const seconds = (Date.now() - t0) / 1000;
        rows.push({ task: cfg.task, metric: 'task_test_loss', value: tl.loss, stderr: null, n: texts.length, shots: 0, split: 'test', seconds, examples_per_s: texts.length / Math.max(seconds, 1e-9) });
        process.stderr.write(`  ${cfg.task} task-test loss=${tl.loss.toFixed(4)} over ${texts.length} texts (${tl.tokens} predictions)\n`);
      }
      if (o.probe && (PROBE_TASKS as readonly string[]).includes(cfg.dataset.loader)) {
        const t0 = Date.now();
        const p = await probeTask(cfg, engine, tok, { dataDir: dataDir(), seed, batch, limit: probeLimit });
        const seconds = (Date.now() - t0) / 1000;
        const base = { task: p.task, n: p.n_test, shots: 0, split: 'test', seconds, examples_per_s: p.n_test / Math.max(seconds, 1e-9) };
        rows.push({ ...base, metric: 'probe_acc', value: p.acc, stderr: p.acc_stderr }, { ...base, metric: 'probe_f1_weighted', value: p.f1_weighted, stderr: p.f1_stderr });
        process.stderr.write(`  ${p.task} probe (train ${p.n_train}, test ${p.n_test}): acc=${p.acc.toFixed(4)} ± ${p.acc_stderr.toFixed(4)} (majority ${p.majority_acc.toFixed(4)}), f1_weighted=${p.f1_weighted.toFixed(4)} ± ${p.f1_stderr.toFixed(4)}\n`);
      }
      for (const m of r.metrics)
        process.stderr.write(`  ${r.task} ${r.shots}-shot n=${r.n} ${m.metric}=${m.value.toFixed(4)}${m.stderr !== null && !Number.isNaN(m.stderr) ? ` ± ${m.stderr.toFixed(4)}` : ''}\n`);
      done.add(cfg.task);
      scored += r.n;
      const left = total - scored;
      if (left > 0) process.stderr.write(`cpt eval: ${scored.toLocaleString('en-US')}/${total.toLocaleString('en-US')} examples in ${fmtDuration((Date.now() - t0) / 1000)}; about ${fmtDuration(((Date.now() - t0) / 1000 / scored) * left)} left\n`);
      // Written after every task so a long run keeps what it finished.
      const file: ResultsFile = {
        kind: 'cpt-eval-results',
        version: 1,
        model: isDir ? path.resolve(o.model) : model.source,
        engine: engine.name,
        tokenizer: tokFile,
        seed,
        limit: o.limit === undefined ? null : /^\d+$/.test(o.limit) ? Number(o.limit) : o.limit,
        time: new Date().toISOString(),
        settings,
        done: [...done],
        results: rows,
      };
      await writeFileAtomic(out, JSON.stringify(file, null, 2) + '\n');
      written = file;
    }
  } finally {
    engine.dispose();
    await tok.close();
  }
  // The summary, lm-eval style: every task and metric of this results file in one table.
  if (written) process.stdout.write(compareTable([written], [modelLabel(isDir ? path.resolve(o.model) : model.source)]));
  process.stderr.write(`cpt eval: wrote ${out}\n`);
}

async function compare(files: string[], out?: string): Promise<void> {
  if (files.length < 1) throw new UserError('--compare: give one or more results JSON files');
  const results = await Promise.all(files.map(readResults));
  // Columns by model; where two files are of one model (other settings, other runs), by file too.
  const labels = results.map((r) => modelLabel(r.model));
  const table = compareTable(results, labels.map((l, i) => (labels.filter((x) => x === l).length > 1 ? `${l} (${path.basename(files[i]!)})` : l)));
  process.stdout.write(table);
  if (out) await writeFileAtomic(path.resolve(out), table);
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('Evaluate a model on financial (FPB, FiQA-SA, Headline, NER) and open-domain tasks by choice log-likelihood, or compare results files')
    .option('--model <dir>', 'HF model directory (e.g. checkpoints/<run>/final) or Pythia preset')
    .option('--tasks <list>', 'comma-separated task names (src/eval/tasks/*.yaml) or YAML paths', FIN_TASKS.join(','))
    .option('--shots <n>', "few-shot examples per prompt (default: each task's num_fewshot)")
    .option('--limit <n>', 'N test examples per task (NER: sentences), a seeded sample in file order; per task as 100,ner=30')
    .option('--seed <n>', 'few-shot sampling seed', '1234')
    .option('--engine <kind>', `${ENGINE_LIST}, or auto (cuda on a GPU, else native if built, else tfjs)`, 'auto')
    .option('--batch <n>', 'sequences per engine call', '8')
    .option('--threads <n>', 'native engine threads (0 = all cores)')
    .option('--tokenizer <file>', "tokenizer.json (default: the model's, else the kit's 20B tokenizer)")
    .option('--out <file>', 'results JSON (default <model>/eval-[<shots>shot-]<limitN|full>-seed<seed>.json, named by the settings); with --compare: markdown file')
    .option('--force', 'rerun the tasks a results file of the same settings has already (default: continue it)')
    .option('--compare <files...>', 'print a markdown table comparing results JSON files side by side')
    .option('--probe', `also train a linear probe on the frozen mean-pooled hidden states (${PROBE_TASKS.join(', ')}): test accuracy and weighted F1`)
    .option('--probe-limit <n>', "the probe's test examples per task, a seeded sample (default: the whole test split)")
    .action(async (o: EvalOpts) => {
      if (o.compare) await compare(o.compare, o.out);
      else await evaluate(o);
    });
}
