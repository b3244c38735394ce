/**
 * Scoring: one streaming pass over the corpus shards, every requested metric computed from the same
 * read. Each shard's scores go to a partial file plus a completion marker holding the file's
 * sha256, so an interrupted run resumes at the first unfinished shard, a damaged partial file is
 * found and rescored alone, and workers on other machines can each score a share of the shards
 * into the same directory; when all are done they are merged into scores.arrow.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256FileAsync } from '../util/hash.js';
import type { Doc } from '../data/doc.js';
import type { DocScorer } from './metrics/metric.js';
import { concatScores, readScores, writeScores, type ScoreTable } from './score-file.js';

/** One corpus shard, read as batches of documents with their token ids (from the token cache). */
export interface ShardInput {
  name: string;
  bytes: number;
  read(): AsyncIterable<{ docs: Doc[]; tokens: Int32Array[] }>;
}

export interface ScoreProgress {
  shard: number; // shards finished (including skipped ones)
  shards: number;
  docs: number; // documents read in this run (held-out ones are read and skipped)
  chars: number; // text characters scored in this run
  skippedShards: number; // shards already complete from an earlier run
}

export interface ScoreRunOptions {
  /** The selection directory (<run_dir>/selection). */
  dir: string;
  /** Identity of the corpus + settings; partial files of another key are never reused. */
  key: string;
  shards: ShardInput[];
  /** Held-out (Fin-test) documents are never scored, so they can never be selected. */
  heldOut: (id: string) => boolean;
  /** One scorer per metric of the table, by metric name (none: token counts only). */
  scorers: { metric: string; scorer: DocScorer }[];
  onProgress?: (p: ScoreProgress) => void;
  /** Called after a shard's partial file and marker are written (tests simulate crashes here). */
  onShardDone?: (shard: number) => void;
  /** Score only the shards this returns true for (a worker's share); default all. */
  owns?: (shard: number) => boolean;
  /** Told of each partial file whose content no longer matches its marker (it is rescored). */
  onDamaged?: (file: string) => void;
  /** A worker's test that the table was merged meanwhile: it then stops, writing nothing more. */
  merged?: () => boolean;
}

/** The folder of a table's per-shard partial files (removed once the merged table exists). */
export const PARTS_DIR = 'parts';

export function partsDir(dir: string, key: string): string {
  return path.join(dir, PARTS_DIR, key.slice(0, 16));
}

function partFile(dir: string, i: number): string {
  return path.join(dir, `shard-${String(i).padStart(5, '0')}.arrow`);
}

/** A shard's partial file: complete (its marker's sha256 matches), never finished, or damaged. */
async function partState(file: string): Promise<'done' | 'missing' | 'damaged'> {
  const done = `${file}.done`;
  if (!existsSync(done)) return 'missing';
  try {
    const m = JSON.parse(await fs.readFile(done, 'utf8')) as { sha256?: string };
    return m.sha256 && (await sha256FileAsync(file)) === m.sha256 ? 'done' : 'damaged';
  } catch {
    return 'damaged';
  }
}

/** Score every shard not already complete under this key; returns the merged table. */
export async function scoreCorpus(o: ScoreRunOptions): Promise<ScoreTable> {
  await scoreShards({ ...o, owns: undefined });
  const pdir = partsDir(o.dir, o.key);
  const parts: ScoreTable[] = [];
  for (let i = 0; i < o.shards.length; i++) parts.push(await readScores(partFile(pdir, i)));
  return concatScores(parts, o.scorers.map((s) => s.metric));
}

/**
 * Score the owned shards that have no completion marker yet; returns how many were scored now.
 * Shards are independent files, so workers sharing the directory never write the same one.
 */
export async function scoreShards(o: ScoreRunOptions): Promise<number> {
  const pdir = partsDir(o.dir, o.key);
  await fs.mkdir(pdir, { recursive: true });
  const owned = o.shards.map((_, i) => i).filter((i) => o.owns?.(i) ?? true);
  const progress: ScoreProgress = { shard: 0, shards: owned.length, docs: 0, chars: 0, skippedShards: 0 };
  o.onProgress?.({ ...progress }); // scoring starts: rates are measured from here
  let scored = 0;
  for (const i of owned) {
    if (o.merged?.()) break; // the merge took the parts away; a part written now would be an orphan
    const file = partFile(pdir, i);
    const state = await partState(file);
    if (state === 'done') progress.skippedShards++;
    else {
      if (state === 'damaged') o.onDamaged?.(file);
      const part = await scoreShard(o.shards[i], o, progress);
      if (o.merged?.()) break;
      await writeScores(file, part);
      // The marker is written after the partial file: a crash between the two rescoring the shard.
      await writeFileAtomic(`${file}.done`, JSON.stringify({ shard: o.shards[i].name, docs: part.ids.length, sha256: await sha256FileAsync(file) }) + '\n');
      scored++;
    }
    progress.shard++;
    o.onProgress?.({ ...progress });
    o.onShardDone?.(i);
  }
  return scored;
}

/** Documents scored per call: record batches hold ~4 MB of text, sliced so progress moves every few seconds. */
const SLICE_DOCS = 512;

async function scoreShard(shard: ShardInput, o: ScoreRunOptions, progress: ScoreProgress): Promise<ScoreTable> {
  const batches: ScoreTable[] = [];
  for await (const batch of shard.read()) {
    for (let at = 0; at < batch.docs.length; at += SLICE_DOCS) {
      const docs = batch.docs.slice(at, at + SLICE_DOCS);
      const tokens = batch.tokens.slice(at, at + SLICE_DOCS);
      const kept = docs.flatMap((d, i) => (o.heldOut(d.id) ? [] : [i]));
      progress.docs += docs.length - kept.length; // held-out documents count as read
      if (kept.length === 0) continue;
      batches.push(await scoreDocs(kept.map((i) => docs[i]), kept.map((i) => tokens[i]), shard.name, o));
      progress.docs += kept.length;
      for (const i of kept) progress.chars += docs[i].text.length;
      o.onProgress?.({ ...progress });
    }
  }
  return concatScores(batches, o.scorers.map((s) => s.metric));
}

async function scoreDocs(docs: Doc[], tokens: Int32Array[], shardName: string, o: ScoreRunOptions): Promise<ScoreTable> {
  const texts = docs.map((d) => d.text);
  const t: ScoreTable = {
    ids: docs.map((d) => d.id),
    source: docs.map((d) => d.source),
    shard: docs.map(() => shardName),
    tokens: Int32Array.from(tokens, (x) => x.length),
    scores: {},
  };
  for (const { metric, scorer } of o.scorers) {
    const col = await scorer.score(texts, tokens);
    if (col.length !== docs.length) throw new Error(`metric ${metric}: scorer returned ${col.length} scores for ${docs.length} documents`);
    t.scores[metric] = col;
  }
  return t;
}
