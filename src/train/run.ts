import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Engine, EngineKind } from '../engine/engine.js';
import { createEngine, ENGINES } from '../engine/index.js';
import { paramCount, type NeoXConfig } from '../model/config.js';
import { loadModel, saveModel } from '../model/load.js';
import type { Recipe } from '../recipe/types.js';
import { diffResumeKeys, formatChanges, recipeHash, resumeKeys } from '../recipe/resume.js';
import { toYaml } from '../recipe/yaml.js';
import { loadRecipe } from '../recipe/load.js';
import { UserError } from '../util/errors.js';
import { lockDir } from '../util/lock.js';
import { fmtDuration, fmtRate } from '../util/progress.js';
import { MetricsLog } from '../monitor/metrics.js';
import { listCheckpoints, latestGoodCheckpoint, removeStaleTemps, verifyCheckpoint, type CheckpointRef } from './checkpoint-store.js';
import { loadTrainCheckpoint, saveTrainCheckpoint, type LoadedCheckpoint, type TrainState } from './checkpoint.js';
import { prepareTrainInputs, type TrainInputs } from './inputs.js';
import { trainLoop, type LoopResult, type Progress } from './loop.js';
import { heldOutLoss, rowsLoss } from '../monitor/heldout.js';
import { planTraining, RowOrder, type TrainPlan } from './plan.js';
import { lrAt } from './schedule.js';
import { scheduleFor } from './loop.js';

export interface TrainOptions {
  /** 'auto' = newest good checkpoint of the run; a path = that checkpoint. */
  resume?: string;
  /** Stop (with a checkpoint) after this optimizer step; the schedule still spans the whole run. */
  maxSteps?: number;
  engine?: EngineKind;
  threads?: number;
  /** Step lines, settings and summary (default stdout). */
  out?: (line: string) => void;
  /** Notes and warnings (default stderr). */
  err?: (line: string) => void;
}

export interface TrainOutcome {
  /** 'SIGINT' / 'SIGTERM' when a signal stopped the run, 'max-steps' for --max-steps; undefined when complete. */
  stoppedBy?: string;
  step: number;
  totalSteps: number;
  /** `<run_dir>/final` once the run is complete. */
  finalDir?: string;
  lastCheckpoint?: string;
}

/**
 * `cpt train`: data (prepare → select → pack) → model → engine → loop → final/. Resumable at
 * any checkpoint; SIGINT/SIGTERM finish the current step and checkpoint before returning.
 */
export async function runTraining(recipe: Recipe, opts: TrainOptions = {}): Promise<TrainOutcome> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const err = opts.err ?? ((l: string) => process.stderr.write(l + '\n'));
  // An engine that cannot run here (no GPU, not built) is reported before any data work.
  const kind = opts.engine ?? recipe.engine.kind;
  const why = await ENGINES[kind].unavailable();
  if (why) throw new UserError(`the ${kind} engine is unavailable: ${why}`);
  // From here on a signal is never the default (exit with the lock and temp files left behind):
  // before the loop it exits at once, cleanly (nothing to checkpoint yet; every file so far is
  // written atomically); in the loop it finishes the step and checkpoints.
  await ensureBaseModel(recipe, opts, err); // a run of its own, with its own handlers
  const stopper = installSignalHandlers(err);
  try {
    const runDir = recipe.run_dir;
    mkdirSync(runDir, { recursive: true });
    // One writer per run directory: a second cpt train (or select) on it is refused, naming the first.
    const release = lockDir(runDir, 'cpt train');
    try {
      return await trainLocked(recipe, opts, kind, out, err, stopper);
    } finally {
      release();
    }
  } finally {
    stopper.remove();
  }
}

async function trainLocked(recipe: Recipe, opts: TrainOptions, kind: EngineKind, out: (l: string) => void, err: (l: string) => void, stopper: Stopper): Promise<TrainOutcome> {
  const runDir = recipe.run_dir;
  removeStaleTemps(runDir);

  const { ref: resumeFrom, loaded } = findResume(runDir, opts.resume, err);
  if (loaded) {
    const changes = diffResumeKeys(loaded.state.resume_keys, recipe);
    if (changes.length) {
      throw new UserError(
        `cannot resume ${resumeFrom!.dir}: the recipe changed in ${changes.length} key${changes.length > 1 ? 's' : ''} that a resume must keep:\n` +
          formatChanges(changes) + `\n  (restore them, or start a new run with another name / run_dir)`,
      );
    }
  }

  const inputs = await prepareTrainInputs(recipe, { log: err });
  const plan = planTraining(recipe.train, inputs.train.count);
  const { config, weights, source } = loaded
    ? { config: loaded.config, weights: loaded.weights, source: resumeFrom!.dir }
    : await loadModel(recipe.model.init, { seed: recipe.train.seed });
  if (inputs.vocabSize > config.vocab_size) {
    throw new UserError(`model ${recipe.model.init}: vocab_size ${config.vocab_size} is smaller than the tokenizer's ${inputs.vocabSize} ids (${recipe.data.tokenizer})`);
  }

  const threads = opts.threads ?? (recipe.engine.threads > 0 ? recipe.engine.threads : os.availableParallelism());
  // --engine naming another kind than the recipe's takes that engine's default precision.
  const precision = kind === recipe.engine.kind ? recipe.engine.precision : ENGINES[kind].defaultPrecision;
  const engine = await createEngine(kind, config, { threads, precision, recompute: recipe.engine.recompute });
  try {
    engine.loadWeights(weights);
    if (loaded) engine.importOptimizer(loaded.optimizer);
    const metrics = new MetricsLog(path.join(runDir, 'metrics.jsonl'), { tensorboard: path.join(runDir, 'tensorboard') });
    let start: Progress = { step: 0, tokens: 0, cursor: 0, time: 0 };
    if (loaded) {
      metrics.truncateTo(loaded.state.step);
      start = { step: loaded.state.step, tokens: loaded.state.tokens, cursor: loaded.state.cursor, time: loaded.state.time, ...(loaded.state.skipped ? { skipped: loaded.state.skipped } : {}) };
      err(`resuming from ${resumeFrom!.dir} (step ${start.step}, ${start.tokens} tokens seen)`);
      if (loaded.state.engine !== engine.name || loaded.state.threads !== threads) {
        err(`note: the checkpoint was written by ${loaded.state.engine} with ${loaded.state.threads} threads, this run uses ${engine.name} with ${threads}; the continuation is equivalent but not bitwise identical`);
      }
    } else {
      metrics.reset(); // a run that never reached its first checkpoint leaves nothing behind
    }

    if (start.step >= plan.totalSteps) err(`the run is already complete (${start.step}/${plan.totalSteps} steps); rewriting final/ only`);
    printSettings(out, recipe, plan, inputs, engine, threads, config, source, start);
    stopper.graceful();
    const hash = recipeHash(recipe);
    const keys = resumeKeys(recipe);
    const recipeYaml = toYaml(recipe);
    const order = new RowOrder(inputs.train.count, recipe.train.seed);
    let lastCheckpoint: string | undefined;
    const result: LoopResult = await trainLoop({
      recipe, plan, engine, data: inputs.train, metrics, start, stopAfter: opts.maxSteps,
      hooks: {
        monitor: (e) => ({
          fin_test: inputs.finTest ? heldOutLoss(e, inputs.finTest, inputs.finTestRows, plan.microBatch) : null,
          pile_test: inputs.pileTest ? heldOutLoss(e, inputs.pileTest, inputs.pileTestRows, plan.microBatch) : null,
          ...(inputs.taskTest ? { task_test: rowsLoss(e, inputs.taskTest, inputs.eosId, plan.microBatch).loss } : {}),
        }),
        checkpoint: (e, p) => {
          const t0 = Date.now();
          const state: TrainState = {
            format: 'cpt-train-state/1', ...p, total_steps: plan.totalSteps, rng: order.rngState(p.cursor),
            recipe_hash: hash, resume_keys: keys, engine: e.name, threads,
          };
          lastCheckpoint = saveTrainCheckpoint(runDir, e, { config, state, recipeYaml, metricsText: metrics.text(), tokenizer: recipe.data.tokenizer }, recipe.checkpoint.keep);
          err(`checkpoint ${lastCheckpoint} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        },
        stopRequested: stopper.requested,
        log: out,
      },
    });

    const p = result.progress;
    let finalDir: string | undefined;
    if (!result.stoppedBy) {
      finalDir = path.join(runDir, 'final');
      await saveModel(finalDir, config, engine.exportWeights(), { tokenizer: recipe.data.tokenizer });
    }
    printSummary(out, result, plan, finalDir);
    return { stoppedBy: result.stoppedBy, step: p.step, totalSteps: plan.totalSteps, finalDir, lastCheckpoint };
  } finally {
    engine.dispose();
    inputs.close();
  }
}

/**
 * `model.base_recipe`: when `model.init` does not exist yet, train the recipe that produces it
 * (resuming it if it was interrupted), so a continued run needs one command.
 */
async function ensureBaseModel(recipe: Recipe, opts: TrainOptions, err: (l: string) => void, depth = 0): Promise<void> {
  const base = recipe.model.base_recipe;
  if (!base || existsSync(path.join(recipe.model.init, 'config.json'))) return;
  if (depth > 4) throw new UserError(`${recipe.file} model.base_recipe: base recipes nest more than 4 deep (a cycle?)`);
  const baseRecipe = await loadRecipe(base);
  const produces = path.join(baseRecipe.run_dir, 'final');
  if (path.resolve(produces) !== path.resolve(recipe.model.init)) {
    throw new UserError(`${recipe.file} model.base_recipe: ${base} writes ${produces}, but model.init is ${recipe.model.init}`);
  }
  await ensureBaseModel(baseRecipe, opts, err, depth + 1); // its own base first (and a cycle is caught here)
  err(`model ${recipe.model.init} does not exist yet: training its base recipe ${base} first`);
  const resume = listCheckpoints(baseRecipe.run_dir).length ? 'auto' : undefined;
  const r = await runTraining(baseRecipe, { ...opts, resume, maxSteps: undefined });
  if (r.stoppedBy) throw new UserError(`base run ${baseRecipe.name} stopped by ${r.stoppedBy}; rerun to resume it`);
}

/** The checkpoint to resume from; refuses to silently restart over an existing run. */
function findResume(runDir: string, resume: string | undefined, warn: (l: string) => void): { ref?: CheckpointRef; loaded?: LoadedCheckpoint } {
  if (resume === undefined) {
    const existing = listCheckpoints(runDir);
    if (existing.length) {
      throw new UserError(
        `${runDir} already has checkpoints (up to step ${existing[existing.length - 1].step}); ` +
          `pass --resume to continue that run, or remove the directory to start over`,
      );
    }
    return {};
  }
  if (resume === 'auto') {
    // A checkpoint that fails its manifest, or passes it but cannot be read (a state.json that
    // does not parse), is skipped for the one before it.
    const got = latestGoodCheckpoint(runDir, warn, (ref) => loadTrainCheckpoint(ref.dir));
    if (got) return { ref: got.ref, loaded: got.value };
    if (listCheckpoints(runDir).length) throw new UserError(`${runDir}: no usable checkpoint (every one fails its manifest check or cannot be read); cannot resume`);
    warn(`no checkpoint in ${runDir} yet; starting from the beginning`);
    return {};
  }
  const dir = path.resolve(resume);
  if (!existsSync(dir)) {
    const have = listCheckpoints(runDir).map((c) => path.basename(c.dir));
    throw new UserError(`--resume ${resume}: no such checkpoint directory (${runDir} has ${have.length ? have.join(', ') : 'no checkpoints'})`);
  }
  const v = verifyCheckpoint(dir);
  if (!v.ok) throw new UserError(`--resume ${resume}: not a usable checkpoint: ${v.reason}`);
  const m = /^step-(\d+)$/.exec(path.basename(dir));
  if (!m || path.resolve(path.dirname(dir)) !== path.resolve(runDir)) {
    throw new UserError(`--resume ${resume}: expected a step-<n> directory of this run (${runDir})`);
  }
  return { ref: { step: Number(m[1]), dir }, loaded: loadTrainCheckpoint(dir) };
}

interface Stopper {
  requested: () => string | undefined;
  /** The loop starts: from now on a signal finishes the step and checkpoints. */
  graceful: () => void;
  remove: () => void;
}

/**
 * Before the loop (graceful() not yet called) a SIGINT/SIGTERM exits at once, releasing the lock
 * through the exit handlers. In the loop the first one finishes the step and checkpoints; a
 * second exits at once.
 */
function installSignalHandlers(err: (l: string) => void): Stopper {
  let got: string | undefined;
  let inLoop = false;
  const handler = (sig: NodeJS.Signals) => {
    const code = sig === 'SIGINT' ? 130 : 143;
    if (!inLoop) {
      err(`${sig}: stopped before training started (nothing to checkpoint yet)`);
      process.exit(code);
    }
    if (got) {
      err(`${sig} again: exiting without a checkpoint`);
      process.exit(code);
    }
    got = sig;
    err(`${sig}: finishing this step, then writing a checkpoint (send again to exit at once)`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    requested: () => got,
    graceful: () => void (inLoop = true),
    remove: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

function printSettings(
  out: (l: string) => void, r: Recipe, plan: TrainPlan, inputs: TrainInputs, engine: Engine, threads: number,
  config: NeoXConfig, source: string, start: Progress,
): void {
  const sched = scheduleFor(r.train, plan);
  const rows: [string, string][] = [
    ['run', `${r.name} (${r.method}) → ${r.run_dir}`],
    ['model', `${source}: ${config.num_hidden_layers} layers × ${config.hidden_size}, ${(paramCount(config) / 1e6).toFixed(2)}M params`],
    ['engine', 'device' in engine && typeof engine.device === 'string' ? `${engine.name} on ${engine.device}` : `${engine.name}, ${threads} thread${threads > 1 ? 's' : ''}`],
    ['data', `${inputs.train.count} rows × ${plan.seqLen} tokens = ${fmtTokens(inputs.train.count * plan.seqLen)} (${inputs.describe})`],
    ['tokens', `${fmtTokens(plan.totalSteps * plan.tokensPerStep)} to train (${(plan.totalSteps * plan.rowsPerStep / inputs.train.count).toFixed(2)} epochs)`],
    ['steps', `${plan.totalSteps}${start.step ? ` (resuming after step ${start.step})` : ''}`],
    ['batch', `${plan.rowsPerStep} seq × ${plan.seqLen} = ${plan.tokensPerStep} tokens (${plan.accum} × micro-batch ${plan.microBatch})`],
    ['lr', `${r.train.lr} peak, ${sched.warmupSteps} warmup steps, ${r.train.schedule} to ${r.train.min_lr}; first ${lrAt(0, sched).toExponential(2)}`],
    ['adamw', `β (${r.train.beta1}, ${r.train.beta2}), eps ${r.train.eps}, weight decay ${r.train.weight_decay}, clip ${r.train.clip}`],
    ['monitor', `every ${r.monitor.every} steps: fin-test ${inputs.finTest ? `${inputs.finTestRows} rows` : 'none'}, pile-test ${inputs.pileTest ? `${inputs.pileTestRows} rows` : 'none'}`],
    ['checkpoint', `every ${r.checkpoint.every} steps, keep ${r.checkpoint.keep}`],
    ['seed', String(r.train.seed)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) out(`${k.padEnd(w)}  ${v}`);
}

function printSummary(out: (l: string) => void, r: LoopResult, plan: TrainPlan, finalDir: string | undefined): void {
  const p = r.progress;
  const status = r.stoppedBy ? `stopped by ${r.stoppedBy} at step ${p.step}/${plan.totalSteps}` : `done: ${p.step} steps`;
  out(
    `${status} | ${fmtTokens(p.tokens)} tokens seen (${fmtTokens(r.sessionTokens)} this session) | wall ${fmtDuration(r.sessionSeconds)} | ` +
      `mean ${fmtRate(r.sessionTokens / Math.max(r.sessionSeconds, 1e-9))} tok/s`,
  );
  const f = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(4));
  const mon = r.lastMonitor ? ` | fin-test ${f(r.lastMonitor.fin_test)} | pile-test ${f(r.lastMonitor.pile_test)} (at step ${r.lastMonitor.step})` : '';
  out(`last losses: train ${f(r.lastLoss)}${mon}`);
  if (p.skipped) out(`skipped steps (non-finite loss or gradient norm): ${p.skipped}`);
  if (finalDir) out(`model: ${finalDir}`);
}

function fmtTokens(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

export type { LoadedCheckpoint };
