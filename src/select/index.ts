/**
 * The selection stage: prepare the domain corpus and tokenize it once (its token cache), score
 * its non-held-out documents (score-cache.ts, one table per metric of the registry), sample under
 * the token budget by the recipe's method, and record the chosen ids in <run_dir>/selection/
 * (ids.txt, selection.json) with a report. Training packs those ids from the same token cache.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Recipe } from '../recipe/types.js';
import { loadTokenizer, prepareCorpus, preparedManifest, readManifest, readTokenized, taskTexts, tokenizeCorpus, type CorpusManifest, type Doc, type Tokenizer, type TokenizeProgress } from '../data/index.js';
import { dataDir } from '../util/paths.js';
import { lockDir } from '../util/lock.js';
import { UserError } from '../util/errors.js';
import { methodMetrics as metricsOf } from '../recipe/names.js';
import { sampleByScore, softOrder, takeBudget, budgetTokens } from './sample.js';
import type { ScoreTable } from './score-file.js';
import { corpusScores, scoreShare, scoreTables, scoresInputs, tablesMerged, type ScoreContext } from './score-cache.js';
import type { ScoreProgress } from './score-run.js';
import { endWorkerJob, joinWorkerJob, ownsShard, workerJob, type Worker } from './workers.js';
import { SelectedWriter, idsSha256, readSelectionRecord, writeSelectionRecord, type SelectionInfo, type SelectionRecord } from './write-selected.js';
import { IDS_FILE, writeReport } from './report.js';

export type { SelectionRecord, SelectionInfo } from './write-selected.js';
export type { ScoreProgress } from './score-run.js';
export { sampleByScore } from './sample.js';

export type SelectionPhase = 'prepare' | 'tokenize' | 'score' | 'sample' | 'report';

export interface SelectionProgress {
  phase: SelectionPhase;
  /** Tokenization progress (phase 'tokenize'; only when shards are tokenized now). */
  tokenize?: TokenizeProgress;
  /** Scoring progress (phase 'score'). */
  score?: ScoreProgress;
  /** Corpus totals, for rates and ETA. */
  totalDocs?: number;
  totalChars?: number;
  message?: string;
}

export interface SelectionOptions {
  /** Redo sampling even when an up-to-date selection exists. */
  force?: boolean;
  /** Recompute scores even when the score tables match (implies force). */
  rescore?: boolean;
  onProgress?: (p: SelectionProgress) => void;
  /** Tests: called after each scored shard (throw to simulate a crash). */
  onShardDone?: (shard: number) => void;
}

export interface SelectionResult {
  record: SelectionRecord;
  /** The chosen ids, one per line (record.ids_file). */
  ids: string;
  /** True when an up-to-date selection was found and nothing was redone. */
  reused: boolean;
  report: string | null;
  /** The score table the selection was sampled from (shared by runs with the same scoring settings); null for TACP. */
  scores: string | null;
}

/** Metrics the recipe's method ranks by (none for DACP and TACP). */
export function methodMetrics(r: Recipe): string[] {
  if (r.method === 'eta-dacp' && !r.selection.metric) throw new UserError(`${r.file}: selection.metric: eta-dacp needs a metric to rank by`);
  return metricsOf(r.method, r.selection.metric);
}

const sha = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex');

export function selectionDir(r: Recipe): string {
  return path.join(r.run_dir, 'selection');
}

/** Tokenize the (owned shards of the) corpus into its token cache, reporting only real work. */
async function tokenizeOnce(dir: string, tok: Tokenizer, o: SelectionOptions, owns?: (shard: number) => boolean): Promise<void> {
  await tokenizeCorpus(dir, tok, {
    owns,
    onProgress: (p) => p.tokenized && o.onProgress?.({ phase: 'tokenize', tokenize: p }),
    onDamaged: (file) => o.onProgress?.({ phase: 'tokenize', message: `${file} fails its sha256 check (damaged); re-tokenizing its shard` }),
  });
}

function scoreContext(r: Recipe, corpus: CorpusManifest, tok: Tokenizer, o: SelectionOptions): ScoreContext {
  const totalDocs = corpus.totals.docs, totalChars = corpus.totals.text_bytes;
  return {
    recipe: r,
    corpusDir: r.data.prepared_dir,
    corpus,
    tok,
    onProgress: (p) => o.onProgress?.({ phase: 'score', score: p, totalDocs, totalChars }),
    onDamaged: (file) => o.onProgress?.({ phase: 'score', message: `${file} fails its sha256 check (damaged); scoring it again` }),
    onShardDone: o.onShardDone,
  };
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
 * `cpt select --worker I/N`: tokenize and score this worker's share of the shards for every table
 * the recipe's selection reads, into the shared caches, and stop; a plain `cpt select` merges and
 * samples. The corpus must be prepared first (`cpt prepare RECIPE`): workers never write it.
 */
export async function runSelectionWorker(recipe: Recipe, worker: Worker, opts: SelectionOptions = {}): Promise<WorkerResult> {
  const r = recipe;
  if (r.method === 'tacp') throw new UserError(`${r.file}: method tacp trains on the task text and scores nothing; run cpt select without --worker`);
  const corpus = await preparedManifest(r.data.corpus, r.data.prepared_dir, r.data.shard_mb);
  if (!corpus) throw new UserError(`${r.data.prepared_dir}: not prepared, or its sources changed since; run \`cpt prepare ${r.file}\` once before starting workers`);
  const tok = await loadTokenizer(r.data.tokenizer, { threads: r.engine.threads || undefined });
  try {
    const metrics = methodMetrics(r);
    const ctx = scoreContext(r, corpus, tok, opts);
    const owned = corpus.shards.filter((_, i) => ownsShard(worker)(i)).length;
    // Everything is merged already (a finished selection, or a run that trained): nothing to
    // score, and no job record left behind for later workers to trip over (B56).
    if (await tablesMerged(ctx, metrics)) return { shards: corpus.shards.length, owned, scored: 0, tables: [] };
    await joinWorkerJob(r, workerJob(corpus.fingerprint, scoreTables(metrics).map((m) => scoresInputs(ctx, m)), worker.count));
    const owns = ownsShard(worker);
    await tokenizeOnce(r.data.prepared_dir, tok, opts, owns);
    const { scored, tables } = await scoreShare(ctx, metrics, owns);
    return { shards: corpus.shards.length, owned: corpus.shards.filter((_, i) => owns(i)).length, scored, tables };
  } finally {
    await tok.close();
  }
}

type PerSource = { source: string; docs: number; tokens: number; corpusDocs: number; corpusTokens: number }[];

/** Per-source totals of a subset of score rows. */
function perSource(s: ScoreTable, chosen: Uint8Array): PerSource {
  const m = new Map<string, PerSource[number]>();
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
 * Run (or reuse) the recipe's selection. Returns its record: the chosen ids and the corpus (with
 * its token cache) they index, which the trainer packs.
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

/** An up-to-date selection in `dir`, if any: same inputs and settings, its ids file unchanged. */
async function reusable(dir: string, fingerprint: string, scores: string | null, opts: SelectionOptions): Promise<SelectionResult | null> {
  const rec = await readSelectionRecord(dir);
  if (rec?.fingerprint !== fingerprint || !rec.ids_sha256) return null; // (no checksum: an older cpt's; selected again)
  const now = await idsSha256(dir, rec.ids_file).catch(() => null);
  if (now !== rec.ids_sha256) {
    opts.onProgress?.({ phase: 'sample', message: `${path.join(dir, rec.ids_file)} ${now ? 'was changed after it was written (sha256)' : 'is missing'}; selecting again` });
    return null;
  }
  const report = path.join(dir, 'report.md');
  return { record: rec, ids: path.join(dir, rec.ids_file), reused: true, report: (await fs.stat(report).catch(() => null)) ? report : null, scores };
}

async function selectLocked(recipe: Recipe, opts: SelectionOptions): Promise<SelectionResult> {
  const r = recipe;
  const dir = selectionDir(r);
  const progress = (phase: SelectionPhase, message?: string): void => opts.onProgress?.({ phase, message });
  // Selections before v2 copied the chosen texts here; the ids replace them.
  await fs.rm(path.join(dir, 'selected'), { recursive: true, force: true });

  if (r.method === 'tacp') return runTacp(r, dir, opts);

  const prepared = await prepareCorpus(r.data.corpus, r.data.prepared_dir, { shardMb: r.data.shard_mb });
  if (!prepared.reused) progress('prepare', `prepared ${prepared.totals.docs} documents into ${r.data.prepared_dir}`);
  const corpus = await readManifest(r.data.prepared_dir);
  const tok = await loadTokenizer(r.data.tokenizer, { threads: r.engine.threads || undefined });
  try {
    const metrics = methodMetrics(r);
    const sel = r.selection;
    // Checked before scoring: a fraction outside (0, 1] is a recipe mistake, not a scoring result.
    if (!(sel.budget > 0 && sel.budget <= 1)) throw new UserError(`${r.file}: selection.budget must be in (0, 1], got ${sel.budget}`);
    await tokenizeOnce(r.data.prepared_dir, tok, opts);
    const { scores, key, file: scoresFile } = await corpusScores(scoreContext(r, corpus, tok, opts), metrics, opts.rescore);
    const fingerprint = sha({ key, method: r.method, sampling: sel.sampling, budget: sel.budget, temperature: sel.temperature, seed: sel.seed, v: 2 });
    if (!opts.force && !opts.rescore) {
      const done = await reusable(dir, fingerprint, scoresFile, opts);
      if (done) return done;
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
    let selectedTokens = 0;
    for (const i of indices) {
      chosen[i] = 1;
      selectedTokens += scores.tokens[i];
    }
    const info: SelectionInfo = {
      method: r.method,
      sampling: metrics.length ? sel.sampling : 'all',
      metrics,
      budget: sel.budget,
      budget_tokens: budget,
      corpus_tokens: corpusTokens,
      corpus_docs: scores.ids.length,
      selected_tokens: selectedTokens,
      selected_docs: indices.length,
      seed: sel.seed,
      temperature: sel.temperature,
      scores_key: key,
      corpus_dir: r.data.prepared_dir,
      corpus_fingerprint: corpus.fingerprint,
      fin_test_fraction: r.data.fin_test_fraction,
    };
    progress('report');
    const ids = Array.from(indices, (i) => scores.ids[i]);
    const report = await writeReport({ dir, runDir: r.run_dir, name: r.name, info, scores, chosen, perSource: perSource(scores, chosen), ids });
    const record = await writeSelectionRecord(dir, { fingerprint, corpus_dir: r.data.prepared_dir, ids_file: IDS_FILE, selection: info });
    return { record, ids: path.join(dir, IDS_FILE), reused: false, report, scores: scoresFile };
  } finally {
    await tok.close();
  }
}

/** TACP: the unlabeled train-split text of the recipe's tasks is the training corpus (written once, tokenized once). */
async function runTacp(r: Recipe, dir: string, opts: SelectionOptions): Promise<SelectionResult> {
  if (r.data.tasks.length === 0) throw new UserError(`${r.file}: data.tasks: tacp needs at least one task`);
  const docs: Doc[] = [];
  for (const t of r.data.tasks) {
    const texts = await taskTexts(t, 'train', dataDir());
    texts.forEach((text, i) => docs.push({ id: `${t}:train:${i}`, text, source: `task:${t}` }));
  }
  const fingerprint = sha({ method: 'tacp', tasks: r.data.tasks, n: docs.length, text: sha(docs.map((d) => d.text)), v: 2 });
  if (!opts.force) {
    const done = await reusable(dir, fingerprint, null, opts);
    if (done) return done;
  }
  const corpusDir = path.join(dir, 'tasks');
  opts.onProgress?.({ phase: 'prepare', message: `writing ${docs.length} task texts to ${corpusDir}` });
  const w = await SelectedWriter.open(corpusDir, r.data.shard_mb);
  for (const d of docs) await w.add(d);
  await w.finish(fingerprint);
  const tok = await loadTokenizer(r.data.tokenizer, { threads: r.engine.threads || undefined });
  const tokens = new Map<string, number>();
  try {
    await tokenizeOnce(corpusDir, tok, opts);
    for await (const b of readTokenized(corpusDir, tok, { views: true })) for (const d of b) tokens.set(d.id, d.ids.length);
  } finally {
    await tok.close();
  }
  const total = [...tokens.values()].reduce((a, n) => a + n, 0);
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
  const per = new Map<string, PerSource[number]>();
  for (const d of docs) {
    const e = per.get(d.source) ?? { source: d.source, docs: 0, tokens: 0, corpusDocs: 0, corpusTokens: 0 };
    const n = tokens.get(d.id) ?? 0;
    e.docs++;
    e.corpusDocs++;
    e.tokens += n;
    e.corpusTokens += n;
    per.set(d.source, e);
  }
  const report = await writeReport({ dir, runDir: r.run_dir, name: r.name, info, scores: null, chosen: null, perSource: [...per.values()], ids: docs.map((d) => d.id) });
  const record = await writeSelectionRecord(dir, { fingerprint, corpus_dir: corpusDir, ids_file: IDS_FILE, selection: info });
  return { record, ids: path.join(dir, IDS_FILE), reused: false, report, scores: null };
}

/** The chosen ids of a selection (ids.txt), as a set for filtering the token cache. */
export async function selectedIds(res: Pick<SelectionResult, 'ids'>): Promise<Set<string>> {
  return new Set((await fs.readFile(res.ids, 'utf8')).split('\n').filter(Boolean));
}
