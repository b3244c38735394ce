import type { Engine } from '../engine/engine.js';
import { UserError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { loadTask, type TaskDoc, type GoldEntity } from '../data/tasks/index.js';
import { NER_CHOICES, NER_TYPES } from '../data/tasks/ner.js';
import type { TaskConfig } from './config.js';
import { buildContext, docChoices, docGold, docRequests, sampleFewshot } from './prompt.js';
import { encodePair, scoreRequests, type EvalTokenizer } from './loglik.js';
import { bootstrapStderr, choiceLikelihoods, entityF1, mean, meanStderr, perplexity, pickChoice, weightedF1, type Span } from './metrics.js';
import { stableHash32 } from './random.js';

export interface RunOptions {
  dataDir: string;
  /** Few-shot examples per prompt (default: the task's num_fewshot). */
  shots?: number;
  /** First N documents (NER: first N sentences) of the split. */
  limit?: number;
  seed: number;
  batch: number;
  /** Longest row the model takes; default the engine config's max_position_embeddings. */
  maxLen?: number;
  /** Draw progress on stderr (examples/s, ETA). */
  progress?: boolean;
  /** Keep each document's prompt and log-likelihoods in the result (for comparisons). */
  samples?: boolean;
  /** Score the one-token choices of a shared context with one forward (loglik.ts; default true; same result either way). */
  shareContext?: boolean;
}

export interface MetricValue {
  metric: string;
  value: number;
  /** Standard error: sample stderr / sqrt(n) for means, bootstrap (1,000 resamples) for F1; null where none. */
  stderr: number | null;
}

export interface TaskSample {
  context: string;
  ll: number[];
}

/** lm-eval's FirstNSampler: the first n documents of the few-shot split, in order. */
function firstN(pool: readonly TaskDoc[], n: number, cfg: TaskConfig): TaskDoc[] {
  if (pool.length < n) throw new UserError(`task ${cfg.task}: only ${pool.length} few-shot examples available, ${n} asked for`);
  return pool.slice(0, n);
}

export interface TaskResult {
  task: string;
  split: string;
  n: number;
  shots: number;
  requests: number;
  /**
   * Requests whose prompt (few-shot examples + document + continuation) was longer than the
   * model's context and lost its start, as lm-eval truncates; then fewer shots were seen than asked.
   */
  truncated: number;
  /** Per document, with RunOptions.samples: the prompt context and each request's log-likelihood. */
  samples?: TaskSample[];
  metrics: MetricValue[];
  seconds: number;
  examples_per_s: number;
}

/**
 * Documents a --limit keeps: N chosen by a seeded hash of the document id (for grouped entity
 * tasks, N groups), kept in file order. Not the first N: source files are often grouped by label
 * (FPB's first 100 test sentences are 87% positive), which would bias a limited run.
 */
export function limitDocs(docs: TaskDoc[], limit: number | undefined, byGroup: boolean, seed: number): TaskDoc[] {
  if (limit === undefined) return docs;
  const keyOf = (d: TaskDoc) => (byGroup ? d.group! : d.id);
  const keys = [...new Set(docs.map(keyOf))];
  if (keys.length <= limit) return docs;
  const rank = (k: string) => stableHash32(`${seed}\0limit\0${k}`);
  const kept = new Set(keys.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1)).slice(0, limit));
  return docs.filter((d) => kept.has(keyOf(d)));
}

/** Test examples a task will score under `limit` (NER: sentences of the kept groups). */
export async function taskSize(cfg: TaskConfig, o: { dataDir: string; limit?: number; seed: number }): Promise<number> {
  const docs = (await loadTask(cfg.dataset.loader, o.dataDir)).splits[cfg.dataset.split] ?? [];
  return limitDocs(docs, o.limit, cfg.metrics.includes('entity_f1'), o.seed).length;
}

/** Evaluate one task: few-shot prompts, batched log-likelihood scoring, metrics. */
export async function runTask(cfg: TaskConfig, engine: Engine, tok: EvalTokenizer, opts: RunOptions): Promise<TaskResult> {
  const data = await loadTask(cfg.dataset.loader, opts.dataDir);
  const split = cfg.dataset.split;
  const all = data.splits[split];
  if (!all) throw new UserError(`${cfg.file}: dataset ${cfg.dataset.loader} has no ${split} split`);
  const shots = opts.shots ?? cfg.num_fewshot;
  const pool = cfg.fewshot_split ? data.splits[cfg.fewshot_split] : undefined;
  if (shots > 0 && !pool)
    throw new UserError(`task ${cfg.task}: ${shots}-shot asked for, but it has no few-shot split (fewshot_split in ${cfg.file}); use --shots 0`);
  const entityTask = cfg.metrics.includes('entity_f1');
  const docs = limitDocs(all, opts.limit, entityTask, opts.seed);
  const maxLen = opts.maxLen ?? engine.config.max_position_embeddings;
  const greedy = cfg.output_type === 'loglikelihood';

  const t0 = Date.now();
  const progress = opts.progress ? new Progress(`eval ${cfg.task}`, docs.length, 'examples') : undefined;
  const lls: number[][] = [];
  const greedyHits: number[] = [];
  let requests = 0, truncated = 0;
  const samples: TaskSample[] | undefined = opts.samples ? [] : undefined;
  // Chunks keep memory flat and progress moving; requests are length-sorted within a chunk.
  const chunk = Math.max(64, opts.batch * 8);
  for (let c = 0; c < docs.length; c += chunk) {
    const part = docs.slice(c, c + chunk);
    const cache = new Map<string, number>();
    const owner: number[] = [];
    const enc = part.flatMap((doc, i) => {
      const examples = !pool || shots === 0 ? [] : cfg.fewshot_sampler === 'first_n' ? firstN(pool, shots, cfg) : sampleFewshot(pool, shots, opts.seed, doc);
      const context = buildContext(cfg, doc, examples);
      if (samples) samples[c + i] = { context, ll: [] };
      return docRequests(cfg, doc, context).map((r) => {
        owner.push(c + i);
        return encodePair(tok, r, cache);
      });
    });
    for (const e of enc) if (e.ctx.length + e.cont.length > maxLen) truncated++;
    const scored = scoreRequests(engine, enc, { batch: opts.batch, maxLen, greedy, padId: tok.eosId, shareContext: opts.shareContext });
    requests += scored.length;
    scored.forEach((s, k) => {
      const d = owner[k]!;
      (lls[d] ??= []).push(s.ll);
      samples?.[d]!.ll.push(s.ll);
      if (greedy) greedyHits[d] = s.greedy ? 1 : 0;
    });
    progress?.add(part.length);
  }
  progress?.finish();
  const seconds = (Date.now() - t0) / 1000;
  if (truncated) {
    process.stderr.write(`eval ${cfg.task}: warning: ${truncated} of ${requests} prompts exceed the model's context of ${maxLen} tokens and were cut at the start, ` +
      `so they carry fewer than the ${shots} shots asked for (lower --shots)\n`);
  }

  const metrics: MetricValue[] = [];
  if (greedy) {
    const docLl = lls.map((l) => l[0]!);
    for (const m of cfg.metrics) {
      if (m === 'acc') metrics.push({ metric: 'acc', value: mean(greedyHits), stderr: meanStderr(greedyHits) });
      else if (m === 'perplexity') metrics.push({ metric: 'perplexity', value: perplexity(docLl), stderr: null });
      else throw new UserError(`${cfg.file}: metric ${m} does not apply to output_type loglikelihood`);
    }
  } else {
    const gold = docs.map((d) => docGold(cfg, d));
    const picks = docs.map((d, i) => pickChoice(lls[i]!, docChoices(cfg, d)));
    const hit = picks.map((p, i) => (p.pred === gold[i] ? 1 : 0));
    const hitNorm = picks.map((p, i) => (p.predNorm === gold[i] ? 1 : 0));
    const pred = picks.map((p) => p.pred);
    for (const m of cfg.metrics) {
      if (m === 'acc') metrics.push({ metric: 'acc', value: mean(hit), stderr: meanStderr(hit) });
      else if (m === 'acc_norm') metrics.push({ metric: 'acc_norm', value: mean(hitNorm), stderr: meanStderr(hitNorm) });
      else if (m === 'f1_weighted') {
        const f = (idx: Int32Array) => weightedF1(Array.from(idx, (i) => gold[i]!), Array.from(idx, (i) => pred[i]!));
        metrics.push({ metric: 'f1_weighted', value: weightedF1(gold, pred), stderr: bootstrapStderr(docs.length, f, 1000, opts.seed) });
      } else if (m === 'entity_f1') metrics.push(...entityMetrics(data.entities?.[split] ?? [], docs, pred, opts.seed));
      else throw new UserError(`${cfg.file}: metric ${m} does not apply to output_type multiple_choice`);
    }
    // Continuous metrics for every multiple-choice task: they rank models whose answers are all
    // the same (accuracy and F1 cannot).
    const c = docs.map((d, i) => choiceLikelihoods(lls[i]!, docChoices(cfg, d), gold[i]!));
    for (const [metric, xs] of [
      ['gold_logprob', c.map((x) => x.goldLogprob)], ['gold_logprob_norm', c.map((x) => x.goldLogprobNorm)],
      ['margin', c.map((x) => x.margin)], ['margin_norm', c.map((x) => x.marginNorm)],
    ] as const) metrics.push({ metric, value: mean(xs), stderr: meanStderr(xs) });
  }
  return { task: cfg.task, split, n: docs.length, shots, requests, truncated, ...(samples ? { samples } : {}), metrics, seconds, examples_per_s: docs.length / Math.max(seconds, 1e-9) };
}

/**
 * NER: each candidate span predicted as person/organization/location is an entity; gold is every
 * gold entity of the evaluated sentences (also those no candidate covers, which count as misses).
 */
function entityMetrics(goldAll: GoldEntity[], docs: TaskDoc[], pred: number[], seed: number): MetricValue[] {
  const groups = new Set(docs.map((d) => d.group!));
  const gold: Span[] = goldAll.filter((g) => groups.has(g.group)).map((g) => ({ ...g, type: NER_CHOICES[NER_TYPES.indexOf(g.type as 'PER')]! }));
  const predicted: Span[] = [];
  docs.forEach((d, i) => {
    const type = pred[i]! < 0 ? 'none' : NER_CHOICES[pred[i]!]!; // a tie predicts no entity
    if (type !== 'none') predicted.push({ group: d.group!, start: Number(d.fields.start), end: Number(d.fields.end), type });
  });
  const r = entityF1(gold, predicted);
  // Bootstrap over sentences, the independent unit: resample sentences, recount tp/pred/gold.
  const gl = [...groups];
  const gIdx = new Map(gl.map((g, i) => [g, i]));
  const key = (s: Span) => `${s.group}\0${s.start}\0${s.end}\0${s.type}`;
  const goldKeys = new Set(gold.map(key));
  const tp = new Float64Array(gl.length), np = new Float64Array(gl.length), ng = new Float64Array(gl.length);
  for (const s of gold) ng[gIdx.get(s.group)!]!++;
  for (const s of predicted) {
    np[gIdx.get(s.group)!]!++;
    if (goldKeys.has(key(s))) tp[gIdx.get(s.group)!]!++;
  }
  const f1At = (idx: Int32Array) => {
    let t = 0, p = 0, g = 0;
    for (const k of idx) (t += tp[k]!), (p += np[k]!), (g += ng[k]!);
    return p + g ? (2 * t) / (p + g) : 0;
  };
  return [
    { metric: 'entity_f1', value: r.f1, stderr: bootstrapStderr(gl.length, f1At, 1000, seed) },
    { metric: 'entity_precision', value: r.precision, stderr: null },
    { metric: 'entity_recall', value: r.recall, stderr: null },
  ];
}
