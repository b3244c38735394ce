/**
 * The score table: one row per scored (non-held-out) document. Stored as Arrow IPC (file format)
 * with columns id, source, shard, tokens, then one Float64 column per metric (NaN = no score).
 * Small enough to hold whole (ids + a few numbers per document), never the texts.
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
  /** One column per metric, by metric name. */
  scores: Record<string, Float64Array>;
}

export function emptyScores(metrics: readonly string[] = []): ScoreTable {
  return { ids: [], source: [], shard: [], tokens: new Int32Array(0), scores: Object.fromEntries(metrics.map((m) => [m, new Float64Array(0)])) };
}

/** Rows of several tables over the same metrics, in order. */
export function concatScores(parts: ScoreTable[], metrics: readonly string[] = Object.keys(parts[0]?.scores ?? {})): ScoreTable {
  const n = parts.reduce((s, p) => s + p.ids.length, 0);
  const out: ScoreTable = { ...emptyScores(), ids: parts.flatMap((p) => p.ids), source: parts.flatMap((p) => p.source), shard: parts.flatMap((p) => p.shard), tokens: new Int32Array(n) };
  for (const m of metrics) out.scores[m] = new Float64Array(n);
  let off = 0;
  for (const p of parts) {
    out.tokens.set(p.tokens, off);
    for (const m of metrics) {
      if (!p.scores[m]) throw new Error(`score tables to concatenate lack metric ${m}`);
      out.scores[m].set(p.scores[m], off);
    }
    off += p.ids.length;
  }
  return out;
}

/** Each table's metric columns side by side; the tables must score the same documents in the same order. */
export function unionScores(parts: ScoreTable[]): ScoreTable {
  const [first] = parts;
  for (const p of parts) {
    if (p.ids.length !== first.ids.length || p.ids.some((id, i) => id !== first.ids[i])) throw new Error('score tables of one corpus list different documents');
  }
  return { ...first, scores: Object.assign({}, ...parts.map((p) => p.scores)) as Record<string, Float64Array> };
}

export function encodeScores(t: ScoreTable): Uint8Array {
  return tableToIPC(tableFromArrays({ id: t.ids, source: t.source, shard: t.shard, tokens: t.tokens, ...t.scores }), 'file');
}

export async function writeScores(file: string, t: ScoreTable): Promise<void> {
  await writeFileAtomic(file, encodeScores(t));
}

const FIXED = ['id', 'source', 'shard', 'tokens'] as const;

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
  for (const c of FIXED) {
    if (!table.getChild(c)) throw new UserError(`${file}: score file lacks column "${c}"; rerun with --rescore`);
  }
  const str = (c: string): string[] => Array.from(table.getChild(c)!.toArray() as Iterable<string>, (s) => String(s));
  const scores: Record<string, Float64Array> = {};
  for (const f of table.schema.fields) {
    if (!(FIXED as readonly string[]).includes(f.name)) scores[f.name] = Float64Array.from(table.getChild(f.name)!.toArray() as ArrayLike<number>);
  }
  return { ids: str('id'), source: str('source'), shard: str('shard'), tokens: Int32Array.from(table.getChild('tokens')!.toArray() as ArrayLike<number>), scores };
}
