/**
 * The score cache: one table per metric, beside the prepared corpus, keyed by everything that
 * changes its scores, so every run that needs the same scores computes them once (hard and soft
 * sampling of one method; ETS-DACP-com reads the union of the single-metric tables). A table is
 * scored shard by shard (score-run.ts), by one process or by workers sharing the directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { isHeldOut, readArrowBatches, readTokenized, type CorpusManifest, type Doc, type Tokenizer } from '../data/index.js';
import type { Recipe } from '../recipe/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { getMetric } from './metrics/registry.js';
import { readScores, unionScores, writeScores, type ScoreTable } from './score-file.js';
import { scoreCorpus, scoreShards, type ScoreProgress, type ScoreRunOptions, type ShardInput } from './score-run.js';

/** The corpus whose (non-held-out) documents are scored, and what scoring reports to. */
export interface ScoreContext {
  recipe: Recipe;
  corpusDir: string;
  corpus: CorpusManifest;
  tok: Tokenizer;
  onProgress?: (p: ScoreProgress) => void;
  /** Tests: called after each scored shard (throw to simulate a crash). */
  onShardDone?: (shard: number) => void;
}

export interface CachedScores {
  scores: ScoreTable;
  key: string;
  file: string;
}

const sha = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex');

/** Key of one metric's table (null: token counts only, for DACP). */
export function scoresKey(c: ScoreContext, metric: string | null): string {
  const r = c.recipe;
  const settings = metric === null ? null : getMetric(metric).settings(r);
  return sha({ v: 2, corpus: c.corpus.fingerprint, fin_test_fraction: r.data.fin_test_fraction, tokenizer: c.tok.hash, metric, settings });
}

function scoresPaths(corpusDir: string, name: string, key: string): { dir: string; file: string; meta: string } {
  const dir = path.join(corpusDir, 'scores', `${name}-${key.slice(0, 12)}`);
  return { dir, file: path.join(dir, 'scores.arrow'), meta: path.join(dir, 'scores.json') };
}

async function cachedKey(meta: string): Promise<string | undefined> {
  if (!existsSync(meta)) return undefined;
  return (JSON.parse(await fs.readFile(meta, 'utf8')) as { key?: string }).key;
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
  const { file, meta } = scoresPaths(c.corpusDir, metrics.join('+'), key);
  if ((await cachedKey(meta)) === key && existsSync(file)) return { scores: await readScores(file), key, file };
  const scores = unionScores(parts.map((p) => p.scores));
  await writeScores(file, scores);
  await writeFileAtomic(meta, JSON.stringify({ key, metrics, docs: scores.ids.length, corpus: c.corpusDir, created: new Date().toISOString() }, null, 2) + '\n');
  return { scores, key, file };
}

async function metricScores(c: ScoreContext, metric: string | null, rescore: boolean): Promise<CachedScores> {
  const key = scoresKey(c, metric);
  const { dir, file, meta } = scoresPaths(c.corpusDir, metric ?? 'tokens', key);
  if (!rescore && (await cachedKey(meta)) === key && existsSync(file)) return { scores: await readScores(file), key, file };
  if (rescore) for (const f of ['parts', 'scores.arrow', 'scores.json']) await fs.rm(path.join(dir, f), { recursive: true, force: true });
  const run = await scoreRun(c, metric, key, dir);
  let scores: ScoreTable;
  try {
    scores = await scoreCorpus(run);
  } finally {
    for (const s of run.scorers) await s.scorer.close?.();
  }
  await writeScores(file, scores);
  await writeFileAtomic(meta, JSON.stringify({ key, metric, docs: scores.ids.length, corpus: c.corpusDir, created: new Date().toISOString() }, null, 2) + '\n');
  // Partial files are only needed until the merged table exists.
  await fs.rm(path.join(dir, 'parts'), { recursive: true, force: true });
  return { scores, key, file };
}

/**
 * A worker's share: score the owned shards of each table not merged yet into the shared cache.
 * Returns the shards scored now and the table directories.
 */
export async function scoreShare(c: ScoreContext, metrics: readonly string[], owns: (shard: number) => boolean): Promise<{ scored: number; tables: string[] }> {
  const out = { scored: 0, tables: [] as string[] };
  for (const m of scoreTables(metrics)) {
    const key = scoresKey(c, m);
    const { dir, file, meta } = scoresPaths(c.corpusDir, m ?? 'tokens', key);
    out.tables.push(dir);
    if ((await cachedKey(meta)) === key && existsSync(file)) continue; // merged by an earlier job
    const run = await scoreRun(c, m, key, dir);
    try {
      out.scored += await scoreShards({ ...run, owns });
    } finally {
      for (const s of run.scorers) await s.scorer.close?.();
    }
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
  };
}

/** Each shard's documents with their ids from the token cache (tokenized once, by tokenizeCorpus). */
function corpusShards(dir: string, m: CorpusManifest, tok: Tokenizer): ShardInput[] {
  return m.shards.map((s) => ({
    name: s.file,
    bytes: s.bytes,
    async *read() {
      const cached = readTokenized(dir, tok, { shard: s.file })[Symbol.asyncIterator]();
      let buf: { id: string; ids: Int32Array }[] = [];
      let at = 0;
      try {
        for await (const rb of readArrowBatches(path.join(dir, s.file), s.bytes)) {
          const ids = rb.getChild('id')!.toArray() as string[];
          const texts = rb.getChild('text')!.toArray() as string[];
          const srcs = rb.getChild('source')!.toArray() as string[];
          const docs: Doc[] = ids.map((id, i) => ({ id, text: texts[i], source: srcs[i] }));
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
