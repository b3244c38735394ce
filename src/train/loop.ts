import type { Engine, AdamWOptions } from '../engine/engine.js';
import type { Recipe } from '../recipe/types.js';
import { fmtDuration, fmtRate } from '../util/progress.js';
import type { MetricRecord, MetricsLog } from '../monitor/metrics.js';
import { lrAt, warmupSteps, type Schedule } from './schedule.js';
import { RowOrder, type TrainPlan } from './plan.js';
import { UserError } from '../util/errors.js';

/** Fixed-length token rows (the packer's output); `read(start, n)` → n × seqLen ids. */
export interface Rows {
  seqLen: number;
  count: number;
  read(start: number, n: number): Int32Array;
}

/** Where a run stands: what a checkpoint's state.json records and a resume restores. */
export interface Progress {
  step: number; // optimizer steps done
  tokens: number; // training tokens consumed
  cursor: number; // next row (in run order) of the packed training data
  time: number; // wall seconds spent training, summed across resumes
  /** Steps skipped for a non-finite loss or gradient norm (train.skip_nonfinite). */
  skipped?: number;
}

export interface Monitored {
  fin_test: number | null;
  pile_test: number | null;
  task_test?: number | null;
}

export interface LoopHooks {
  /** Held-out losses for the monitor (null when that set is absent). */
  monitor(engine: Engine): Monitored;
  /** Save a checkpoint of the engine + progress (called after the step is complete). */
  checkpoint(engine: Engine, p: Progress): void;
  /** A stop request (signal) seen between steps: finish, checkpoint, return. */
  stopRequested(): string | undefined;
  log(line: string): void;
}

export interface LoopResult {
  progress: Progress;
  /** The signal that stopped the run, 'max-steps' for --max-steps, undefined when complete. */
  stoppedBy?: string;
  lastLoss: number | null;
  /** The latest held-out losses of this session and the step they were measured at. */
  lastMonitor: ({ step: number } & Monitored) | null;
  sessionTokens: number;
  sessionSeconds: number;
}

export function scheduleFor(t: Recipe['train'], plan: TrainPlan): Schedule {
  return { lr: t.lr, minLr: t.min_lr, warmupSteps: warmupSteps(t.warmup, plan.totalSteps), totalSteps: plan.totalSteps, kind: t.schedule };
}

/** CPT_FAILPOINT_KILL_AT_STEP=n: SIGKILL this process right after optimizer step n (tests only). */
const KILL_AT_STEP = process.env.CPT_FAILPOINT_KILL_AT_STEP ? Number(process.env.CPT_FAILPOINT_KILL_AT_STEP) : undefined;
/** CPT_FAILPOINT_NAN_AT_STEP=n: step n's loss comes out NaN, as after an overflow (tests only). */
const NAN_AT_STEP = process.env.CPT_FAILPOINT_NAN_AT_STEP ? Number(process.env.CPT_FAILPOINT_NAN_AT_STEP) : undefined;

/**
 * The training loop: accumulate `plan.accum` micro-batches, one AdamW step with the scheduled lr,
 * log, monitor every `monitor.every` steps, checkpoint every `checkpoint.every`. Everything that
 * decides the next update is in (weights, optimizer moments, progress), so resuming from a
 * checkpoint replays the identical trajectory.
 */
export async function trainLoop(args: {
  recipe: Recipe;
  plan: TrainPlan;
  engine: Engine;
  data: Rows;
  metrics: MetricsLog;
  start: Progress;
  /** Stop after this optimizer step (checkpointing there) without changing the schedule. */
  stopAfter?: number;
  hooks: LoopHooks;
}): Promise<LoopResult> {
  const { recipe, plan, engine, data, metrics, hooks } = args;
  const t = recipe.train;
  const sched = scheduleFor(t, plan);
  const order = new RowOrder(data.count, t.seed);
  const p: Progress = { ...args.start };
  const sessionStart = Date.now();
  const timeBase = p.time;
  const elapsed = () => timeBase + (Date.now() - sessionStart) / 1000;
  const adam = (lr: number): AdamWOptions => ({ lr, beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weight_decay, clip: t.clip });
  const mb = plan.microBatch, seq = plan.seqLen;
  const batch = new Int32Array(mb * seq);
  let lastLoss: number | null = null;
  let lastMonitor: LoopResult['lastMonitor'] = null;
  const monitorEvery = Math.max(1, recipe.monitor.every);
  const ckptEvery = recipe.checkpoint.every;

  if (p.step === 0) {
    // The first monitor pass can take a while (the whole held-out budget): say what is happening.
    hooks.log(`step 0/${plan.totalSteps} | scoring the held-out sets before the first step …`);
    const t0 = performance.now();
    lastMonitor = { step: 0, ...hooks.monitor(engine) };
    metrics.append(record(p, null, null, null, lastMonitor, null, elapsed()));
    hooks.log(`step 0/${plan.totalSteps} | fin-test ${fmtLoss(lastMonitor.fin_test)} | pile-test ${fmtLoss(lastMonitor.pile_test)}${taskTest(lastMonitor)} | ${((performance.now() - t0) / 1000).toFixed(1)} s per monitor pass`);
  }
  const stopAt = Math.min(plan.totalSteps, args.stopAfter ?? Infinity);
  let stepsThisSession = 0;
  let stoppedBy: string | undefined;

  while (p.step < stopAt) {
    const t0 = performance.now();
    let lossSum = 0;
    for (let a = 0; a < plan.accum; a++) {
      for (let r = 0; r < mb; r++) batch.set(data.read(order.row(p.cursor + r), 1), r * seq);
      lossSum += engine.trainStep(batch, mb, seq, 1 / plan.accum);
      p.cursor += mb;
    }
    if (NAN_AT_STEP === p.step + 1) lossSum = NaN;
    const lr = lrAt(p.step, sched);
    // A non-finite loss or gradient norm is never applied: the engines refuse such an update
    // (applyAdamW), and a NaN loss is caught before it is even tried.
    const finiteLoss = Number.isFinite(lossSum);
    if (!finiteLoss) engine.zeroGrads();
    const gradNorm = finiteLoss ? engine.applyAdamW(adam(lr)).gradNorm : NaN;
    if (!finiteLoss || !Number.isFinite(gradNorm)) {
      const what = !finiteLoss ? `loss (${lossSum / plan.accum})` : `gradient norm (${gradNorm})`;
      if (!t.skip_nonfinite) {
        throw new UserError(
          `step ${p.step + 1}: non-finite ${what}; stopped without applying it, weights and the last checkpoint are untouched ` +
            `(set train.skip_nonfinite: true to skip such steps instead)`,
        );
      }
      p.skipped = (p.skipped ?? 0) + 1;
      hooks.log(`step ${p.step + 1}/${plan.totalSteps} | non-finite ${what}: step skipped (${p.skipped} so far)`);
    }
    const ms = performance.now() - t0;
    p.step += 1;
    p.tokens += plan.tokensPerStep;
    stepsThisSession += 1;
    lastLoss = finiteLoss ? lossSum / plan.accum : null;
    const tokS = plan.tokensPerStep / (ms / 1000);

    const isMonitor = p.step % monitorEvery === 0 || p.step === plan.totalSteps;
    const mon = isMonitor ? hooks.monitor(engine) : null;
    if (mon) lastMonitor = { step: p.step, ...mon };
    p.time = elapsed();
    metrics.append(record(p, lr, lastLoss, Number.isFinite(gradNorm) ? gradNorm : null, mon, tokS, p.time));

    // Wall time per step so far this session (monitor and checkpoint time included).
    // To where this session stops: --max-steps, else the end of the run.
    const eta = ((stopAt - p.step) * (Date.now() - sessionStart)) / 1000 / stepsThisSession;
    hooks.log(
      `step ${p.step}/${plan.totalSteps} | loss ${fmtLoss(lastLoss)} | gnorm ${gradNorm.toFixed(2)} | lr ${lr.toExponential(1)} | ` +
        `${ms.toFixed(0)} ms | ${fmtRate(tokS)} tok/s | eta ${fmtDuration(eta)}${stopAt < plan.totalSteps ? ` to step ${stopAt}` : ''}` +
        (mon ? ` | fin-test ${fmtLoss(mon.fin_test)} | pile-test ${fmtLoss(mon.pile_test)}${taskTest(mon)}` : ''),
    );

    // Let pending signal handlers run: the engine calls above are synchronous.
    await new Promise<void>((res) => setImmediate(res));
    stoppedBy = hooks.stopRequested();
    if (!stoppedBy && p.step === stopAt && stopAt < plan.totalSteps) stoppedBy = 'max-steps';
    const due = (ckptEvery > 0 && p.step % ckptEvery === 0) || p.step === plan.totalSteps || stoppedBy !== undefined;
    if (due) hooks.checkpoint(engine, p);
    if (stoppedBy) break;
    // Fault injection for the crash-recovery tests: die as abruptly as a power cut after this step.
    if (KILL_AT_STEP === p.step) process.kill(process.pid, 'SIGKILL');
  }
  return { progress: p, stoppedBy, lastLoss, lastMonitor, sessionTokens: stepsThisSession * plan.tokensPerStep, sessionSeconds: (Date.now() - sessionStart) / 1000 };
}

function record(
  p: Progress, lr: number | null, loss: number | null, gnorm: number | null,
  mon: Monitored | null, tokS: number | null, time: number,
): MetricRecord {
  return {
    step: p.step, tokens: p.tokens, lr, loss, grad_norm: gnorm,
    fin_test: mon?.fin_test ?? null, pile_test: mon?.pile_test ?? null,
    ...(mon?.task_test !== undefined ? { task_test: mon.task_test } : {}),
    tok_s: tokS, time: Math.round(time * 1000) / 1000,
  };
}

function taskTest(m: Monitored): string {
  return m.task_test === undefined ? '' : ` | task-test ${fmtLoss(m.task_test)}`;
}

function fmtLoss(x: number | null): string {
  return x === null ? '-' : x.toFixed(3);
}
