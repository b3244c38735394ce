/**
 * The score cache: one table per metric, beside the prepared corpus, keyed by everything that
 * changes its scores, so every run that needs the same scores computes them once (hard and soft
 * sampling of one method; ETS-DACP-com reads the union of the single-metric tables). A table is
 * scored shard by shard (score-run.ts), by one process or by workers sharing the directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { isHeldOut, readShardDocs, readTokenized, type CorpusManifest, type Tokenizer } from '../data/index.js';
import type { Recipe } from '../recipe/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256FileAsync } from '../util/hash.js';
import { UserError } from '../util/errors.js';
import { getMetric } from './metrics/registry.js';
import { readScores, unionScores, writeScores, type ScoreTable } from './score-file.js';
import { PARTS_DIR, scoreCorpus, scoreShards, type ScoreProgress, type ScoreRunOptions, type ShardInput } from './score-run.js';

/** The corpus whose (non-held-out) documents are scored, and what scoring reports to. */
export interface ScoreContext {
  recipe: Recipe;
  corpusDir: string;
  corpus: CorpusManifest;
  tok: Tokenizer;
  onProgress?: (p: ScoreProgress) => void;
  /** Told of each cached score file that fails its checksum (it is rebuilt). */
  onDamaged?: (file: string) => void;
  /** Tests: called after each scored shard (throw to simulate a crash). */
  onShardDone?: (shard: number) => void;
}

export interface CachedScores {
  scores: ScoreTable;
  key: string;
  file: string;
}

const sha = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex');

/** Everything that changes one metric's scores (null: token counts only, for DACP), by what it is. */
export function scoresInputs(c: ScoreContext, metric: string | null): Record<string, unknown> {
  const r = c.recipe;
  const settings = metric === null ? null : getMetric(metric).settings(r);
  return { v: 2, corpus: c.corpus.fingerprint, fin_test_fraction: r.data.fin_test_fraction, tokenizer: c.tok.hash, metric, settings };
}

/** Key of one metric's table. */
export function scoresKey(c: ScoreContext, metric: string | null): string {
  return sha(scoresInputs(c, metric));
}

/** Where a table lives: <corpus>/scores/<name>-<key>/{scores.arrow, scores.json, parts/}. */
function tablePaths(corpusDir: string, name: string, key: string): { dir: string; file: string; meta: string; parts: string } {
  const dir = path.join(corpusDir, 'scores', `${name}-${key.slice(0, 12)}`);
  return { dir, file: path.join(dir, 'scores.arrow'), meta: path.join(dir, 'scores.json'), parts: path.join(dir, PARTS_DIR) };
}

/** A single metric's table (null: DACP's token counts): its key and paths. */
function metricTable(c: ScoreContext, metric: string | null): { key: string } & ReturnType<typeof tablePaths> {
  const key = scoresKey(c, metric);
  return { key, ...tablePaths(c.corpusDir, metric ?? 'tokens', key) };
}

/** True when the table at these paths was completed under this key and its file is intact. */
async function isCached(t: { key: string; file: string; meta: string }, c: ScoreContext): Promise<boolean> {
  if (!existsSync(t.meta) || !existsSync(t.file)) return false;
  const m = JSON.parse(await fs.readFile(t.meta, 'utf8')) as { key?: string; sha256?: string };
  if (m.key !== t.key || !m.sha256) return false; // no checksum: a table from an older cpt, rescored
  if ((await sha256FileAsync(t.file)) === m.sha256) return true;
  c.onDamaged?.(t.file);
  return false;
}

/** A completed table, read back from its file. */
async function readTable(t: { key: string; file: string }): Promise<CachedScores> {
  return { scores: await readScores(t.file), key: t.key, file: t.file };
}

/** Writes a finished table, then its meta (the marker that it is complete). */
async function writeTable(t: { key: string; file: string; meta: string }, scores: ScoreTable, c: ScoreContext, what: Record<string, unknown>): Promise<CachedScores> {
  await writeScores(t.file, scores);
  await writeFileAtomic(t.meta, JSON.stringify({ key: t.key, ...what, docs: scores.ids.length, sha256: await sha256FileAsync(t.file), corpus: c.corpusDir, created: new Date().toISOString() }, null, 2) + '\n');
  return { scores, key: t.key, file: t.file };
}

/** Runs `f` over a scoring pass of one table, closing the metric's scorer whatever happens. */
async function withRun<T>(c: ScoreContext, t: { key: string; dir: string }, metric: string | null, f: (run: ScoreRunOptions) => Promise<T>): Promise<T> {
  const run = await scoreRun(c, metric, t.key, t.dir);
  try {
    return await f(run);
  } finally {
    for (const s of run.scorers) await s.scorer.close?.();
  }
}

/** The table each metric is scored into (DACP: one table of token counts). */
export function scoreTables(metrics: readonly string[]): (string | null)[] {
  return metrics.length ? [...metrics] : [null];
}

/**
 * The scores of `metrics` (the union of their tables; DACP: token counts only), each table reused
 * when its key matches, else scored (resumably). `rescore` drops the tables first.
 */
export async function corpusScores(c: ScoreContext, metrics: readonly string[], rescore = false): Promise<CachedScores> {
  const parts: CachedScores[] = [];
  for (const m of scoreTables(metrics)) parts.push(await metricScores(c, m, rescore));
  if (parts.length === 1) return parts[0];
  // ETS-DACP-com: the union is written too, so the selection names one table like the others.
  const key = sha(parts.map((p) => p.key));
  const t = { key, ...tablePaths(c.corpusDir, metrics.join('+'), key) };
  if (await isCached(t, c)) return readTable(t);
  return writeTable(t, unionScores(parts.map((p) => p.scores)), c, { metrics });
}

async function metricScores(c: ScoreContext, metric: string | null, rescore: boolean): Promise<CachedScores> {
  const t = metricTable(c, metric);
  if (!rescore && (await isCached(t, c))) return readTable(t);
  if (rescore) for (const f of [t.parts, t.file, t.meta]) await fs.rm(f, { recursive: true, force: true });
  const out = await writeTable(t, await withRun(c, t, metric, scoreCorpus), c, { metric });
  // Partial files are only needed until the merged table exists.
  await fs.rm(t.parts, { recursive: true, force: true });
  return out;
}

/** Whether every table of `metrics` is merged already (a worker then has nothing to do). */
export async function tablesMerged(c: ScoreContext, metrics: readonly string[]): Promise<boolean> {
  for (const m of scoreTables(metrics)) if (!(await isCached(metricTable(c, m), c))) return false;
  return true;
}

/**
 * A worker's share: score the owned shards of each table not merged yet into the shared cache.
 * Returns the shards scored now and the table directories.
 */
export async function scoreShare(c: ScoreContext, metrics: readonly string[], owns: (shard: number) => boolean): Promise<{ scored: number; tables: string[] }> {
  const out = { scored: 0, tables: [] as string[] };
  for (const m of scoreTables(metrics)) {
    const t = metricTable(c, m);
    out.tables.push(t.dir);
    if (await isCached(t, c)) continue; // merged by an earlier job
    out.scored += await withRun(c, t, m, (run) => scoreShards({ ...run, owns, merged: () => existsSync(t.meta) }));
  }
  return out;
}

/** What a scoring pass of one table needs; builds the metric's scorer. */
async function scoreRun(c: ScoreContext, metric: string | null, key: string, dir: string): Promise<ScoreRunOptions> {
  const r = c.recipe;
  return {
    dir,
    key,
    shards: corpusShards(c.corpusDir, c.corpus, c.tok),
    heldOut: (id) => isHeldOut(id, r.data.fin_test_fraction),
    scorers: metric === null ? [] : [{ metric, scorer: await getMetric(metric).scorer(r, c.tok) }],
    onProgress: c.onProgress,
    onShardDone: c.onShardDone,
    onDamaged: c.onDamaged,
  };
}

/** Each shard's documents with their ids from the token cache (tokenized once, by tokenizeCorpus). */
function corpusShards(dir: string, m: CorpusManifest, tok: Tokenizer): ShardInput[] {
  return m.shards.map((s) => ({
    name: s.file,
    bytes: s.bytes,
    async *read() {
      const cached = readTokenized(dir, tok, { shard: s })[Symbol.asyncIterator]();
      let buf: { id: string; ids: Int32Array }[] = [];
      let at = 0;
      try {
        for await (const docs of readShardDocs(dir, s)) {
          const tokens: Int32Array[] = [];
          for (const d of docs) {
            if (at === buf.length) {
              const n = await cached.next();
              if (n.done) throw new UserError(`${dir}: token cache of ${s.file} ends before document ${d.id}; tokenize the corpus again`);
              buf = n.value;
              at = 0;
            }
            const t = buf[at++];
            if (t.id !== d.id) throw new UserError(`${dir}: token cache of ${s.file} is out of step (${t.id} where ${d.id} was expected); tokenize the corpus again`);
            tokens.push(t.ids);
          }
          yield { docs, tokens };
        }
      } finally {
        await cached.return?.(undefined); // closes the token file when the shard is done (or scoring stops)
      }
    },
  }));
}
