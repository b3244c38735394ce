/**
 * The score table: one row per scored (non-held-out) document. Stored as Arrow IPC (file format)
 * with columns id, source, shard, tokens, similarity, perplexity, entropy; a metric not computed is
 * NaN. Small enough to hold whole (ids + a few numbers per document), never the texts.
 */
import { promises as fs } from 'node:fs';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import type { ScoreColumns } from './sample.js';

export interface ScoreTable extends ScoreColumns {
  ids: string[];
  source: string[];
  shard: string[];
  tokens: Int32Array;
  similarity: Float64Array;
  perplexity: Float64Array;
  entropy: Float64Array;
}

export function emptyScores(): ScoreTable {
  return {
    ids: [],
    source: [],
    shard: [],
    tokens: new Int32Array(0),
    similarity: new Float64Array(0),
    perplexity: new Float64Array(0),
    entropy: new Float64Array(0),
  };
}

export function scoreRows(t: ScoreTable): number {
  return t.ids.length;
}

export function concatScores(parts: ScoreTable[]): ScoreTable {
  const n = parts.reduce((s, p) => s + p.ids.length, 0);
  const out: ScoreTable = {
    ids: parts.flatMap((p) => p.ids),
    source: parts.flatMap((p) => p.source),
    shard: parts.flatMap((p) => p.shard),
    tokens: new Int32Array(n),
    similarity: new Float64Array(n),
    perplexity: new Float64Array(n),
    entropy: new Float64Array(n),
  };
  let off = 0;
  for (const p of parts) {
    out.tokens.set(p.tokens, off);
    out.similarity.set(p.similarity, off);
    out.perplexity.set(p.perplexity, off);
    out.entropy.set(p.entropy, off);
    off += p.ids.length;
  }
  return out;
}

export function encodeScores(t: ScoreTable): Uint8Array {
  const table = tableFromArrays({
    id: t.ids,
    source: t.source,
    shard: t.shard,
    tokens: t.tokens,
    similarity: t.similarity,
    perplexity: t.perplexity,
    entropy: t.entropy,
  });
  return tableToIPC(table, 'file');
}

export async function writeScores(file: string, t: ScoreTable): Promise<void> {
  await writeFileAtomic(file, encodeScores(t));
}

const COLUMNS = ['id', 'source', 'shard', 'tokens', 'similarity', 'perplexity', 'entropy'] as const;

export async function readScores(file: string): Promise<ScoreTable> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read score file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let table;
  try {
    table = tableFromIPC(bytes);
  } catch (e) {
    throw new UserError(`${file}: not an Arrow IPC score file (${(e as Error).message}); rerun with --rescore`);
  }
  for (const c of COLUMNS) {
    if (!table.getChild(c)) throw new UserError(`${file}: score file lacks column "${c}"; rerun with --rescore`);
  }
  const str = (c: string): string[] => Array.from(table.getChild(c)!.toArray() as Iterable<string>, (s) => String(s));
  const num = (c: string): Float64Array => Float64Array.from(table.getChild(c)!.toArray() as ArrayLike<number>);
  return {
    ids: str('id'),
    source: str('source'),
    shard: str('shard'),
    tokens: Int32Array.from(table.getChild('tokens')!.toArray() as ArrayLike<number>),
    similarity: num('similarity'),
    perplexity: num('perplexity'),
    entropy: num('entropy'),
  };
}
