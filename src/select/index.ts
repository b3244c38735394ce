/**
 * The selection stage: prepare the domain corpus if needed, score its (non-held-out) documents
 * once, sample under the token budget by the recipe's method, write the chosen documents as corpus
 * shards in <run_dir>/selection/selected/ with a report beside them.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Recipe } from '../recipe/types.js';
import { isHeldOut, loadTokenizer, prepareCorpus, preparedManifest, readArrowBatches, readDocs, readManifest, taskTexts, type CorpusManifest, type Doc, type Tokenizer } from '../data/index.js';
import { MANIFEST } from '../data/shards.js';
import { createEngine, type Engine } from '../engine/index.js';
import { loadModel } from '../model/load.js';
import { writeFileAtomic } from '../util/atomic.js';
import { dataDir } from '../util/paths.js';
import { lockDir } from '../util/lock.js';
import { UserError } from '../util/errors.js';
import { sampleByScore, softOrder, takeBudget, budgetTokens, type Metric } from './sample.js';
import { readScores, writeScores, type ScoreTable } from './score-file.js';
import { scoreCorpus, scoreShards, type DocScorer, type ScoreProgress, type ScoreRunOptions, type ShardInput } from './score-run.js';
import { endWorkerJob, joinWorkerJob, ownsShard, workerJob, type Worker } from './workers.js';
import { DenseSimilarityScorer, PerplexityScorer, TextPoolScorer, modelEmbed, transformersEmbed } from './scorers.js';
import { SelectedWriter, type SelectionInfo, type SelectionManifest } from './write-selected.js';
import { writeReport } from './report.js';

export type { SelectionManifest, SelectionInfo } from './write-selected.js';
export type { ScoreProgress } from './score-run.js';
export { sampleByScore } from './sample.js';

export type SelectionPhase = 'prepare' | 'score' | 'sample' | 'write' | 'report';

export interface SelectionProgress {
  phase: SelectionPhase;
  /** Scoring progress (phase 'score'). */
  score?: ScoreProgress;
  /** Corpus totals, for rates and ETA. */
  totalDocs?: number;
  totalChars?: number;
  message?: string;
}

export interface SelectionOptions {
  /** Redo sampling and writing even when an up-to-date selection exists. */
  force?: boolean;
  /** Recompute scores even when scores.arrow matches (implies force). */
  rescore?: boolean;
  onProgress?: (p: SelectionProgress) => void;
  /** Tests: called after each scored shard (throw to simulate a crash). */
  onShardDone?: (shard: number) => void;
}

export interface SelectionResult {
  /** The selected corpus directory (corpus shards + manifest.json). */
  dir: string;
  manifest: SelectionManifest;
  /** True when an up-to-date selection was found and nothing was redone. */
  reused: boolean;
  report: string | null;
  /** The score table the selection was sampled from (shared by runs with the same scoring settings); null for TACP. */
  scores: string | null;
}

/** Metrics each method ranks by. */
export function methodMetrics(r: Recipe): Metric[] {
  switch (r.method) {
    case 'ets-dacp':
      return ['similarity'];
    case 'eta-dacp':
      if (!r.selection.metric) throw new UserError(`${r.file}: selection.metric: eta-dacp needs perplexity or entropy`);
      return [r.selection.metric];
    case 'ets-dacp-com':
      return ['similarity', 'perplexity', 'entropy'];
    default:
      return [];
  }
}

const sha = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex');

export function selectionDir(r: Recipe): string {
  return path.join(r.run_dir, 'selection');
}

/** The proxy model for perplexity (and the default `model` embedder): selection.proxy_model, else model.init. */
function proxyModel(r: Recipe): string {
  return r.selection.proxy_model ?? r.model.init;
}

/** Settings that change scores: a score table is reused only under the same key. */
function scoresKey(r: Recipe, corpus: CorpusManifest, tok: Tokenizer, metrics: Metric[]): string {
  const e = r.selection.embedder;
  return sha({
    v: 1,
    corpus: corpus.fingerprint,
    fin_test_fraction: r.data.fin_test_fraction,
    tokenizer: tok.hash,
    metrics,
    similarity: metrics.includes('similarity')
      ? { tasks: [...r.data.tasks].sort(), kind: e.kind, ...(e.kind === 'hashed' ? { dim: e.dim, ngrams: e.ngrams } : { model: e.model ?? proxyModel(r), max_tokens: e.max_tokens }), hashedVersion: 1 }
      : null,
    perplexity: metrics.includes('perplexity') ? { model: proxyModel(r), tokens: r.selection.perplexity_tokens } : null,
    entropy: metrics.includes('entropy') ? { tagger: 'wink-eng-lite-web-model', v: 1 } : null,
  });
}

async function proxyEngine(r: Recipe, dir: string): Promise<Engine> {
  const m = await loadModel(dir, { seed: r.train.seed });
  const engine = await createEngine(r.engine.kind, m.config, { threads: r.engine.threads || undefined, precision: r.engine.precision, recompute: r.engine.recompute });
  engine.loadWeights(m.weights);
  return engine;
}

async function buildScorers(r: Recipe, metrics: Metric[], tok: Tokenizer): Promise<DocScorer[]> {
  const scorers: DocScorer[] = [];
  const wantSim = metrics.includes('similarity');
  const e = r.selection.embedder;
  let tasks: string[] = [];
  if (wantSim) {
    if (r.data.tasks.length === 0) throw new UserError(`${r.file}: data.tasks: ${r.method} needs at least one task to measure similarity to`);
    // Train split only: the evaluation test split must not shape the training data.
    for (const t of r.data.tasks) tasks.push(...(await taskTexts(t, 'train', dataDir())));
  }
  const hashed = wantSim && e.kind === 'hashed';
  if (hashed || metrics.includes('entropy')) {
    scorers.push(new TextPoolScorer({ hashed: hashed ? { spec: e, taskTexts: tasks } : null, entropy: metrics.includes('entropy'), threads: r.engine.threads || undefined }));
  }
  if (wantSim && e.kind === 'model') {
    const engine = await proxyEngine(r, e.model ?? proxyModel(r));
    const taskTokens = await tok.encodeBatch(tasks);
    scorers.push(await DenseSimilarityScorer.create(modelEmbed(engine, e.max_tokens), tasks, taskTokens, async () => engine.dispose()));
  }
  if (wantSim && e.kind === 'transformers') {
    const embed = await transformersEmbed(e.model, `${r.file}: selection.embedder`);
    scorers.push(await DenseSimilarityScorer.create(async (texts) => embed(texts), tasks, []));
  }
  if (metrics.includes('perplexity')) {
    const engine = await proxyEngine(r, proxyModel(r));
    scorers.push(Object.assign(new PerplexityScorer(engine, r.selection.perplexity_tokens), { close: async () => engine.dispose() }));
  }
  return scorers;
}

function corpusShards(dir: string, m: CorpusManifest): ShardInput[] {
  return m.shards.map((s) => ({
    name: s.file,
    bytes: s.bytes,
    async *read(): AsyncIterable<Doc[]> {
      for await (const rb of readArrowBatches(path.join(dir, s.file), s.bytes)) {
        const ids = rb.getChild('id')!.toArray() as string[];
        const texts = rb.getChild('text')!.toArray() as string[];
        const srcs = rb.getChild('source')!.toArray() as string[];
        yield ids.map((id, i) => ({ id, text: texts[i], source: srcs[i] }));
      }
    },
  }));
}

/**
 * Scores of the corpus, one table per metric, reused when its key matches, else computed
 * (resumably). They live beside the prepared corpus, keyed by everything that changes them, so
 * every run that needs the same scores computes them once: hard and soft sampling of one method,
 * and ETS-DACP-com, whose table is the union of the three single-metric tables.
 */
async function corpusScores(r: Recipe, corpusDir: string, corpus: CorpusManifest, tok: Tokenizer, metrics: Metric[], o: SelectionOptions): Promise<{ scores: ScoreTable; key: string; file: string }> {
  if (metrics.length <= 1) return metricScores(r, corpusDir, corpus, tok, metrics, o);
  const key = scoresKey(r, corpus, tok, metrics);
  const { file, meta } = scoresPaths(corpusDir, metrics, key);
  if (!o.rescore && (await cachedKey(meta)) === key && existsSync(file)) return { scores: await readScores(file), key, file };
  const parts: ScoreTable[] = [];
  for (const m of metrics) parts.push((await metricScores(r, corpusDir, corpus, tok, [m], o)).scores);
  const scores = unionScores(parts, metrics);
  await writeScores(file, scores);
  await writeFileAtomic(meta, JSON.stringify({ key, metrics, docs: scores.ids.length, corpus: corpusDir, created: new Date().toISOString() }, null, 2) + '\n');
  return { scores, key, file };
}

function scoresPaths(corpusDir: string, metrics: Metric[], key: string): { dir: string; file: string; meta: string } {
  const dir = path.join(corpusDir, 'scores', `${metrics.join('+')}-${key.slice(0, 12)}`);
  return { dir, file: path.join(dir, 'scores.arrow'), meta: path.join(dir, 'scores.json') };
}

async function cachedKey(meta: string): Promise<string | undefined> {
  if (!existsSync(meta)) return undefined;
  return (JSON.parse(await fs.readFile(meta, 'utf8')) as { key?: string }).key;
}

/** Each metric's column from its own table; the tables score the same documents in the same order. */
function unionScores(parts: ScoreTable[], metrics: Metric[]): ScoreTable {
  const [first] = parts;
  for (const p of parts) {
    if (p.ids.length !== first.ids.length || p.ids.some((id, i) => id !== first.ids[i])) throw new Error('score tables of one corpus list different documents');
  }
  const out: ScoreTable = { ...first };
  metrics.forEach((m, i) => (out[m] = parts[i][m]));
  return out;
}

/** What a scoring pass over the corpus for `metrics` needs, its scorers aside. */
function scoreRun(r: Recipe, corpusDir: string, corpus: CorpusManifest, tok: Tokenizer, key: string, dir: string, scorers: DocScorer[], o: SelectionOptions): ScoreRunOptions {
  const totalDocs = corpus.totals.docs, totalChars = corpus.totals.text_bytes;
  return {
    dir,
    key,
    shards: corpusShards(corpusDir, corpus),
    heldOut: (id) => isHeldOut(id, r.data.fin_test_fraction),
    tokenize: (texts) => tok.encodeBatch(texts),
    scorers,
    onProgress: (p) => o.onProgress?.({ phase: 'score', score: p, totalDocs, totalChars }),
    onShardDone: o.onShardDone,
  };
}

/** One scoring pass over the corpus for `metrics` (at most one, or none for DACP's token counts). */
async function metricScores(r: Recipe, corpusDir: string, corpus: CorpusManifest, tok: Tokenizer, metrics: Metric[], o: SelectionOptions): Promise<{ scores: ScoreTable; key: string; file: string }> {
  const key = scoresKey(r, corpus, tok, metrics);
  const { dir, file, meta } = scoresPaths(corpusDir, metrics, key);
  if (!o.rescore && (await cachedKey(meta)) === key && existsSync(file)) return { scores: await readScores(file), key, file };
  if (o.rescore) for (const f of ['parts', 'scores.arrow', 'scores.json']) await fs.rm(path.join(dir, f), { recursive: true, force: true });
  const scorers = await buildScorers(r, metrics, tok);
  let scores: ScoreTable;
  try {
    scores = await scoreCorpus(scoreRun(r, corpusDir, corpus, tok, key, dir, scorers, o));
  } finally {
    for (const s of scorers) await s.close?.();
  }
  await writeScores(file, scores);
  await writeFileAtomic(meta, JSON.stringify({ key, metrics, docs: scores.ids.length, corpus: corpusDir, created: new Date().toISOString() }, null, 2) + '\n');
  // Partial files are only needed until the merged table exists.
  await fs.rm(path.join(dir, 'parts'), { recursive: true, force: true });
  return { scores, key, file };
}

export interface WorkerResult {
  /** Shards of the corpus, of this worker's share, and scored now (the rest were done before). */
  shards: number;
  owned: number;
  scored: number;
  /** Score-table directories written into. */
  tables: string[];
}

/**
 * `cpt select --worker I/N`: score this worker's share of the shards for every table the recipe's
 * selection reads, into the shared score cache, and stop; a plain `cpt select` merges and samples.
 * The corpus must be prepared first (`cpt prepare RECIPE`): workers never write it.
 */
export async function runSelectionWorker(recipe: Recipe, worker: Worker, opts: SelectionOptions = {}): Promise<WorkerResult> {
  const r = recipe;
  if (r.method === 'tacp') throw new UserError(`${r.file}: method tacp trains on the task text and scores nothing; run cpt select without --worker`);
  const corpus = await preparedManifest(r.data.corpus, r.data.prepared_dir, r.data.shard_mb);
  if (!corpus) throw new UserError(`${r.data.prepared_dir}: not prepared, or its sources changed since; run \`cpt prepare ${r.file}\` once before starting workers`);
  const tok = await loadTokenizer(r.data.tokenizer);
  try {
    const metrics = methodMetrics(r);
    const tables: Metric[][] = metrics.length ? metrics.map((m) => [m]) : [[]];
    const keys = tables.map((ms) => scoresKey(r, corpus, tok, ms));
    await joinWorkerJob(r, workerJob(r, corpus.fingerprint, keys, worker.count));
    const owns = ownsShard(worker);
    const out: WorkerResult = { shards: corpus.shards.length, owned: corpus.shards.filter((_, i) => owns(i)).length, scored: 0, tables: [] };
    for (const [i, ms] of tables.entries()) {
      const { dir, file, meta } = scoresPaths(r.data.prepared_dir, ms, keys[i]!);
      out.tables.push(dir);
      if ((await cachedKey(meta)) === keys[i] && existsSync(file)) continue; // merged by an earlier job
      const scorers = await buildScorers(r, ms, tok);
      try {
        out.scored += await scoreShards({ ...scoreRun(r, r.data.prepared_dir, corpus, tok, keys[i]!, dir, scorers, opts), owns });
      } finally {
        for (const s of scorers) await s.close?.();
      }
    }
    return out;
  } finally {
    await tok.close();
  }
}

/** Per-source totals of a subset of score rows. */
function perSource(s: ScoreTable, chosen: Uint8Array): { source: string; docs: number; tokens: number; corpusDocs: number; corpusTokens: number }[] {
  const m = new Map<string, { source: string; docs: number; tokens: number; corpusDocs: number; corpusTokens: number }>();
  for (let i = 0; i < s.ids.length; i++) {
    let e = m.get(s.source[i]);
    if (!e) m.set(s.source[i], (e = { source: s.source[i], docs: 0, tokens: 0, corpusDocs: 0, corpusTokens: 0 }));
    e.corpusDocs++;
    e.corpusTokens += s.tokens[i];
    if (chosen[i]) {
      e.docs++;
      e.tokens += s.tokens[i];
    }
  }
  return [...m.values()].sort((a, b) => a.source.localeCompare(b.source));
}

/**
 * Run (or reuse) the recipe's selection. Returns the selected corpus directory and its manifest;
 * the trainer reads it with readDocs like any prepared corpus.
 */
export async function runSelection(recipe: Recipe, opts: SelectionOptions = {}): Promise<SelectionResult> {
  // The selection lives in the run directory: one writer at a time (cpt train holds it already).
  await fs.mkdir(recipe.run_dir, { recursive: true });
  const release = lockDir(recipe.run_dir, 'cpt select');
  try {
    const r = await selectLocked(recipe, opts);
    await endWorkerJob(recipe);
    return r;
  } finally {
    release();
  }
}

async function selectLocked(recipe: Recipe, opts: SelectionOptions): Promise<SelectionResult> {
  const r = recipe;
  const dir = selectionDir(r);
  const outDir = path.join(dir, 'selected');
  const progress = (phase: SelectionPhase, message?: string): void => opts.onProgress?.({ phase, message });

  if (r.method === 'tacp') return runTacp(r, dir, outDir, opts);

  progress('prepare', `preparing ${r.data.prepared_dir}`);
  await prepareCorpus(r.data.corpus, r.data.prepared_dir, { shardMb: r.data.shard_mb });
  const corpus = await readManifest(r.data.prepared_dir);
  const tok = await loadTokenizer(r.data.tokenizer);
  try {
    const metrics = methodMetrics(r);
    const sel = r.selection;
    // Checked before scoring: a fraction outside (0, 1] is a recipe mistake, not a scoring result.
    if (!(sel.budget > 0 && sel.budget <= 1)) throw new UserError(`${r.file}: selection.budget must be in (0, 1], got ${sel.budget}`);
    const { scores, key, file: scoresFile } = await corpusScores(r, r.data.prepared_dir, corpus, tok, metrics, { ...opts });
    const fingerprint = sha({ key, method: r.method, sampling: sel.sampling, budget: sel.budget, temperature: sel.temperature, seed: sel.seed, v: 1 });
    if (!opts.force && !opts.rescore && existsSync(path.join(outDir, MANIFEST))) {
      const m = JSON.parse(await fs.readFile(path.join(outDir, MANIFEST), 'utf8')) as SelectionManifest;
      if (m.fingerprint === fingerprint) return { dir: outDir, manifest: m, reused: true, report: existsSync(path.join(dir, 'report.md')) ? path.join(dir, 'report.md') : null, scores: scoresFile };
    }

    progress('sample');
    let indices: Int32Array;
    let corpusTokens = 0;
    for (const t of scores.tokens) corpusTokens += t;
    let budget = budgetTokens(sel.budget, corpusTokens);
    if (metrics.length === 0) {
      // DACP: the whole corpus; a budget below 1 takes a uniform random subset (seeded).
      const all = softOrder(new Float64Array(scores.ids.length).fill(1), sel.seed);
      indices = sel.budget >= 1 ? Int32Array.from(scores.ids.keys()) : takeBudget(all, scores.tokens, budget);
    } else {
      const s = sampleByScore(scores, { sampling: sel.sampling, metrics, budgetFraction: sel.budget, temperature: sel.temperature, seed: sel.seed });
      indices = s.indices;
      budget = s.budget;
    }
    const chosen = new Uint8Array(scores.ids.length);
    for (const i of indices) chosen[i] = 1;
    const keep = new Set<string>();
    let selectedTokens = 0;
    for (const i of indices) {
      keep.add(scores.ids[i]);
      selectedTokens += scores.tokens[i];
    }

    progress('write', `writing ${keep.size} documents to ${outDir}`);
    const w = await SelectedWriter.open(outDir, r.data.shard_mb);
    for await (const docs of readDocs(r.data.prepared_dir)) for (const d of docs) if (keep.has(d.id) && !isHeldOut(d.id, r.data.fin_test_fraction)) await w.add(d);
    const info: SelectionInfo = {
      method: r.method,
      sampling: metrics.length ? sel.sampling : 'all',
      metrics,
      budget: sel.budget,
      budget_tokens: budget,
      corpus_tokens: corpusTokens,
      corpus_docs: scores.ids.length,
      selected_tokens: selectedTokens,
      selected_docs: keep.size,
      seed: sel.seed,
      temperature: sel.temperature,
      scores_key: key,
      corpus_dir: r.data.prepared_dir,
      corpus_fingerprint: corpus.fingerprint,
      fin_test_fraction: r.data.fin_test_fraction,
    };
    const manifest = await w.finish(fingerprint, info);

    progress('report');
    const report = await writeReport({ dir, runDir: r.run_dir, name: r.name, info, scores, chosen, perSource: perSource(scores, chosen), ids: [...indices].map((i) => scores.ids[i]) });
    return { dir: outDir, manifest, reused: false, report, scores: scoresFile };
  } finally {
    await tok.close();
  }
}

/** TACP: the unlabeled train-split text of the recipe's tasks is the training corpus. */
async function runTacp(r: Recipe, dir: string, outDir: string, opts: SelectionOptions): Promise<SelectionResult> {
  if (r.data.tasks.length === 0) throw new UserError(`${r.file}: data.tasks: tacp needs at least one task`);
  const docs: Doc[] = [];
  for (const t of r.data.tasks) {
    const texts = await taskTexts(t, 'train', dataDir());
    texts.forEach((text, i) => docs.push({ id: `${t}:train:${i}`, text, source: `task:${t}` }));
  }
  const fingerprint = sha({ method: 'tacp', tasks: r.data.tasks, n: docs.length, text: sha(docs.map((d) => d.text)), v: 1 });
  if (!opts.force && existsSync(path.join(outDir, MANIFEST))) {
    const m = JSON.parse(await fs.readFile(path.join(outDir, MANIFEST), 'utf8')) as SelectionManifest;
    if (m.fingerprint === fingerprint) return { dir: outDir, manifest: m, reused: true, report: path.join(dir, 'report.md'), scores: null };
  }
  const tok = await loadTokenizer(r.data.tokenizer);
  let tokens: Int32Array[];
  try {
    tokens = await tok.encodeBatch(docs.map((d) => d.text));
  } finally {
    await tok.close();
  }
  opts.onProgress?.({ phase: 'write', message: `writing ${docs.length} task texts to ${outDir}` });
  const w = await SelectedWriter.open(outDir, r.data.shard_mb);
  for (const d of docs) await w.add(d);
  const total = tokens.reduce((s, t) => s + t.length, 0);
  const info: SelectionInfo = {
    method: 'tacp',
    sampling: 'all',
    metrics: [],
    budget: 1,
    budget_tokens: total,
    corpus_tokens: total,
    corpus_docs: docs.length,
    selected_tokens: total,
    selected_docs: docs.length,
    seed: r.selection.seed,
    temperature: r.selection.temperature,
    fin_test_fraction: r.data.fin_test_fraction,
  };
  const manifest = await w.finish(fingerprint, info);
  const per = new Map<string, { source: string; docs: number; tokens: number; corpusDocs: number; corpusTokens: number }>();
  docs.forEach((d, i) => {
    const e = per.get(d.source) ?? { source: d.source, docs: 0, tokens: 0, corpusDocs: 0, corpusTokens: 0 };
    e.docs++;
    e.corpusDocs++;
    e.tokens += tokens[i].length;
    e.corpusTokens += tokens[i].length;
    per.set(d.source, e);
  });
  const report = await writeReport({ dir, runDir: r.run_dir, name: r.name, info, scores: null, chosen: null, perSource: [...per.values()], ids: docs.map((d) => d.id) });
  return { dir: outDir, manifest, reused: false, report, scores: null };
}
