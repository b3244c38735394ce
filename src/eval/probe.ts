/**
 * Linear probing (as "Don't Stop Pretraining" and DSIR rank pre-training data at small scale): a
 * multinomial logistic regression on the frozen model's mean-pooled final hidden states, trained
 * on the task's train split, scored on its test split. Full-batch gradient descent from zero
 * weights on standardised features, L2, a fixed number of steps: no randomness in the fit, so a
 * probe is deterministic; the seed only picks the (capped) document samples and the bootstrap.
 */
import type { Engine } from '../engine/engine.js';
import { loadTask, type TaskDoc } from '../data/tasks/index.js';
import { UserError } from '../util/errors.js';
import type { TaskConfig } from './config.js';
import type { EvalTokenizer } from './loglik.js';
import { argmax, bootstrapStderr, mean, meanStderr, softmaxInPlace, weightedF1 } from './metrics.js';
import { limitDocs } from './run.js';

/** Tasks a sentence-level probe fits (NER's span classification would need span features). */
export const PROBE_TASKS = ['fpb', 'fiqa_sa', 'headline'] as const;

export interface ProbeOptions {
  dataDir: string;
  seed: number;
  batch: number;
  /** Test documents (default all); train documents are capped at `maxTrain` (seeded sample). */
  limit?: number;
  maxTrain?: number;
  /** Tokens of each text kept (its start). */
  maxTokens?: number;
}

export interface ProbeResult {
  task: string;
  n_train: number;
  n_test: number;
  acc: number;
  acc_stderr: number;
  f1_weighted: number;
  f1_stderr: number;
  /** Accuracy of always answering the most frequent train label: the floor a probe must beat. */
  majority_acc: number;
}

export interface SoftmaxModel {
  classes: number;
  /** [classes][features + 1] (last column: bias), over standardised features. */
  w: Float64Array[];
  mu: Float64Array;
  sd: Float64Array;
}

/** Multinomial logistic regression by full-batch gradient descent (deterministic). */
export function fitSoftmax(x: Float32Array[], y: number[], classes: number, o: { l2?: number; steps?: number; lr?: number } = {}): SoftmaxModel {
  const n = x.length, d = x[0]!.length, l2 = o.l2 ?? 1e-3, steps = o.steps ?? 300, lr = o.lr ?? 0.5;
  const mu = new Float64Array(d), sd = new Float64Array(d);
  for (const r of x) for (let j = 0; j < d; j++) mu[j] += r[j]! / n;
  for (const r of x) for (let j = 0; j < d; j++) sd[j] += (r[j]! - mu[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]!) || 1;
  const z = x.map((r) => Float64Array.from(r, (v, j) => (v - mu[j]!) / sd[j]!));
  const w = Array.from({ length: classes }, () => new Float64Array(d + 1));
  const g = Array.from({ length: classes }, () => new Float64Array(d + 1));
  const p = new Float64Array(classes);
  for (let s = 0; s < steps; s++) {
    for (const gc of g) gc.fill(0);
    for (let i = 0; i < n; i++) {
      logits(w, z[i]!, p);
      softmaxInPlace(p);
      p[y[i]!] -= 1;
      for (let c = 0; c < classes; c++) {
        const e = p[c]! / n, gc = g[c]!, zi = z[i]!;
        for (let j = 0; j < d; j++) gc[j] += e * zi[j]!;
        gc[d] += e;
      }
    }
    for (let c = 0; c < classes; c++) {
      const wc = w[c]!, gc = g[c]!;
      for (let j = 0; j <= d; j++) wc[j] -= lr * (gc[j]! + (j < d ? l2 * wc[j]! : 0));
    }
  }
  return { classes, w, mu, sd };
}

function logits(w: Float64Array[], z: ArrayLike<number>, out: Float64Array): void {
  const d = z.length;
  for (let c = 0; c < w.length; c++) {
    const wc = w[c]!;
    let s = wc[d]!;
    for (let j = 0; j < d; j++) s += wc[j]! * z[j]!;
    out[c] = s;
  }
}

export function predictSoftmax(m: SoftmaxModel, x: Float32Array): number {
  const z = Float64Array.from(x, (v, j) => (v - m.mu[j]!) / m.sd[j]!);
  const p = new Float64Array(m.classes);
  logits(m.w, z, p);
  return argmax(p);
}

/** The text a probe reads: the document itself, with the question where the label depends on it. */
function probeText(task: string, d: TaskDoc): string {
  return task === 'headline' ? `${d.fields.question}\n${d.fields.text}` : d.fields.text!;
}

/** Mean-pooled final hidden states of each text (its first maxTokens tokens). */
async function features(engine: Engine, tok: EvalTokenizer, texts: string[], batch: number, maxTokens: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const D = engine.config.hidden_size;
  for (let b0 = 0; b0 < texts.length; b0 += batch) {
    const rows = texts.slice(b0, b0 + batch).map((t) => {
      const ids = tok.encode(t);
      return ids.length ? ids.subarray(0, maxTokens) : Int32Array.of(tok.eosId);
    });
    const T = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * T).fill(tok.eosId);
    rows.forEach((r, i) => ids.set(r, i * T));
    const h = engine.meanHidden(ids, rows.length, T, Int32Array.from(rows, (r) => r.length));
    for (let i = 0; i < rows.length; i++) out.push(h.slice(i * D, (i + 1) * D));
  }
  return out;
}

export async function probeTask(cfg: TaskConfig, engine: Engine, tok: EvalTokenizer, o: ProbeOptions): Promise<ProbeResult> {
  if (!(PROBE_TASKS as readonly string[]).includes(cfg.dataset.loader)) {
    throw new UserError(`--probe: task ${cfg.task} has no sentence-level probe (probes exist for ${PROBE_TASKS.join(', ')})`);
  }
  if (cfg.doc_to_choice === 'per_doc') throw new UserError(`--probe: task ${cfg.task} has per-document choices`);
  const data = await loadTask(cfg.dataset.loader, o.dataDir);
  const train = limitDocs(data.splits.train!, o.maxTrain ?? 2000, false, o.seed).filter((d) => (d.gold ?? -1) >= 0);
  const test = limitDocs(data.splits.test!, o.limit, false, o.seed).filter((d) => (d.gold ?? -1) >= 0);
  const maxTokens = Math.min(o.maxTokens ?? 128, engine.config.max_position_embeddings);
  const xtr = await features(engine, tok, train.map((d) => probeText(cfg.dataset.loader, d)), o.batch, maxTokens);
  const xte = await features(engine, tok, test.map((d) => probeText(cfg.dataset.loader, d)), o.batch, maxTokens);
  const classes = cfg.doc_to_choice.length;
  const ytr = train.map((d) => d.gold!), yte = test.map((d) => d.gold!);
  const m = fitSoftmax(xtr, ytr, classes);
  const pred = xte.map((x) => predictSoftmax(m, x));
  const hit = pred.map((p, i) => (p === yte[i] ? 1 : 0));
  const counts = new Array<number>(classes).fill(0);
  for (const y of ytr) counts[y]!++;
  const major = counts.indexOf(Math.max(...counts));
  const f = (idx: Int32Array) => weightedF1(Array.from(idx, (i) => yte[i]!), Array.from(idx, (i) => pred[i]!));
  return {
    task: cfg.task,
    n_train: train.length,
    n_test: test.length,
    acc: mean(hit),
    acc_stderr: meanStderr(hit),
    f1_weighted: weightedF1(yte, pred),
    f1_stderr: bootstrapStderr(test.length, f, 1000, o.seed),
    majority_acc: mean(yte.map((y) => (y === major ? 1 : 0))),
  };
}
