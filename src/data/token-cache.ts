/**
 * Token cache: each shard tokenized once into `<dir>/tokens/<tokenizer hash>/<shard>.tokens.arrow`
 * ({id: Utf8, ids: List<Int32>}) with a `<shard>.tokens.json` sidecar naming the shard's sha256
 * and the tokens file's own sha256, written after it. A tokens file is checked against its sha256
 * before it is used (once per process); a damaged one counts as missing, so the next
 * tokenization rebuilds just that shard. Shards are independent, so selection workers on several
 * machines can each tokenize their share into the same directory; `index.json` sums a complete
 * cache.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Field, Int32, List, RecordBatch, RecordBatchFileWriter, Utf8, makeData, vectorFromArray } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256FileAsync } from '../util/hash.js';
import { UserError } from '../util/errors.js';
import { readArrowBatches, readManifest, readShardDocs, type ReadDocsOptions, type ShardInfo } from './shards.js';
import { isHeldOut } from './split.js';
import type { Tokenizer } from './tokenizer.js';

export interface TokenizedDoc {
  id: string;
  ids: Int32Array;
}

/** The sidecar of one cached shard: which shard content it was made from, and its totals. */
interface ShardTokens {
  shard: string;
  sha256: string;
  file: string;
  /** sha256 of the tokens file itself. */
  fileSha256: string;
  docs: number;
  tokens: number;
}

export interface TokenizeProgress {
  docs: number;
  tokens: number;
  totalDocs: number;
  /** Shards tokenized so far by this call (0: everything so far came from the cache). */
  tokenized: number;
}

export interface TokenizeOptions {
  onProgress?: (p: TokenizeProgress) => void;
  /** Documents handed to encodeBatch at once. */
  batchDocs?: number;
  /** Tokenize only the shards this returns true for (a selection worker's share); default all. */
  owns?: (shard: number) => boolean;
  /** Told of each cached tokens file that fails its checksum (it is re-tokenized). */
  onDamaged?: (file: string) => void;
}

export function tokenCacheDir(dir: string, tokenizerHash: string): string {
  return path.join(dir, 'tokens', tokenizerHash.slice(0, 16));
}

const INDEX = 'index.json';
const sidecar = (cdir: string, shard: string): string => path.join(cdir, shard.replace(/\.arrow$/, '.tokens.json'));

/** Tokens files found intact in this process, by path and mtime: each is hashed once. */
const intact = new Map<string, number>();

type Cached = { state: 'ok'; e: ShardTokens } | { state: 'missing' | 'stale' } | { state: 'damaged'; file: string };

/** A shard's cache: usable, missing, made from other shard content, or damaged (checksum). */
async function cachedShard(cdir: string, s: ShardInfo): Promise<Cached> {
  let e: ShardTokens;
  try {
    e = JSON.parse(await fs.readFile(sidecar(cdir, s.file), 'utf8')) as ShardTokens;
  } catch {
    return { state: 'missing' };
  }
  // A cache from before tokens files carried their checksum is rebuilt once.
  if (e.sha256 !== s.sha256 || !e.fileSha256) return { state: 'stale' };
  const file = path.join(cdir, e.file);
  const st = await fs.stat(file).catch(() => null);
  if (!st) return { state: 'missing' };
  if (intact.get(file) === st.mtimeMs) return { state: 'ok', e };
  if ((await sha256FileAsync(file)) !== e.fileSha256) return { state: 'damaged', file };
  intact.set(file, st.mtimeMs);
  return { state: 'ok', e };
}

/** What `cpt prepare --verify` adds for the token caches of a prepared corpus: one line per shard. */
export async function verifyTokenCaches(dir: string): Promise<{ file: string; ok: boolean; problem?: string }[]> {
  const m = await readManifest(dir);
  const caches = await fs.readdir(path.join(dir, 'tokens')).catch(() => [] as string[]);
  const out: { file: string; ok: boolean; problem?: string }[] = [];
  for (const c of caches) {
    const cdir = path.join(dir, 'tokens', c);
    for (const s of m.shards) {
      const r = await cachedShard(cdir, s);
      const file = path.join(cdir, s.file.replace(/\.arrow$/, '.tokens.arrow'));
      if (r.state === 'ok') out.push({ file, ok: true });
      else if (r.state === 'damaged') out.push({ file, ok: false, problem: 'fails its sha256 check (the next cpt select or cpt train re-tokenizes the shard)' });
      else if (r.state === 'stale') out.push({ file, ok: false, problem: 'made from other shard content or without a checksum (re-tokenized when next used)' });
    }
  }
  return out;
}

/**
 * Tokenizes every (owned) shard not yet cached for this tokenizer; returns the totals of the owned
 * shards and how many were tokenized now. A complete pass also writes index.json.
 */
export async function tokenizeCorpus(dir: string, tokenizer: Tokenizer, opts: TokenizeOptions = {}): Promise<{ tokens: number; docs: number; tokenized: number }> {
  const m = await readManifest(dir);
  const cdir = tokenCacheDir(dir, tokenizer.hash);
  await fs.mkdir(cdir, { recursive: true });
  const owned = m.shards.filter((_, i) => opts.owns?.(i) ?? true);
  const totalDocs = owned.reduce((a, s) => a + s.docs, 0);
  let doneDocs = 0, doneTokens = 0, tokenized = 0;
  for (const s of owned) {
    const c = await cachedShard(cdir, s);
    let e = c.state === 'ok' ? c.e : null;
    if (c.state === 'damaged') opts.onDamaged?.(c.file);
    if (!e) {
      tokenized++;
      e = await tokenizeShard(dir, cdir, s, tokenizer, opts.batchDocs ?? 2048, (docs, tokens) => opts.onProgress?.({ docs: doneDocs + docs, tokens: doneTokens + tokens, totalDocs, tokenized }));
    }
    doneDocs += e.docs;
    doneTokens += e.tokens;
    opts.onProgress?.({ docs: doneDocs, tokens: doneTokens, totalDocs, tokenized });
  }
  if (owned.length === m.shards.length) {
    await writeFileAtomic(path.join(cdir, INDEX), JSON.stringify({ tokenizer: tokenizer.hash, tokens: doneTokens, docs: doneDocs }, null, 2) + '\n');
  }
  return { tokens: doneTokens, docs: doneDocs, tokenized };
}

async function tokenizeShard(dir: string, cdir: string, s: ShardInfo, tokenizer: Tokenizer, batchDocs: number, progress: (docs: number, tokens: number) => void): Promise<ShardTokens> {
  const file = s.file.replace(/\.arrow$/, '.tokens.arrow');
  const writer = new RecordBatchFileWriter();
  let docs = 0, tokens = 0;
  for await (const batch of readShardDocs(dir, s)) {
    for (let i = 0; i < batch.length; i += batchDocs) {
      const part = batch.slice(i, i + batchDocs);
      const ids = await tokenizer.encodeBatch(part.map((d) => d.text));
      writer.write(tokenBatch(part.map((d) => d.id), ids));
      docs += part.length;
      for (const a of ids) tokens += a.length;
      progress(docs, tokens);
    }
  }
  writer.finish();
  const bytes = writer.toUint8Array(true);
  await writeFileAtomic(path.join(cdir, file), bytes);
  const e: ShardTokens = { shard: s.file, sha256: s.sha256, file, fileSha256: createHash('sha256').update(bytes).digest('hex'), docs, tokens };
  // The sidecar goes last: a crash in between re-tokenizes the shard.
  await writeFileAtomic(sidecar(cdir, s.file), JSON.stringify(e) + '\n');
  return e;
}

function tokenBatch(ids: string[], tokens: Int32Array[]): RecordBatch {
  const offsets = new Int32Array(tokens.length + 1);
  for (let i = 0; i < tokens.length; i++) offsets[i + 1] = offsets[i] + tokens[i].length;
  const flat = new Int32Array(offsets[tokens.length]);
  tokens.forEach((t, i) => flat.set(t, offsets[i]));
  const child = makeData({ type: new Int32(), data: flat });
  const list = makeData({ type: new List(new Field('item', new Int32(), false)), length: tokens.length, nullCount: 0, valueOffsets: offsets, child });
  return new RecordBatch({ id: vectorFromArray(ids, new Utf8()).data[0], ids: list });
}

/**
 * Streams the cached token ids of a prepared corpus, batch by batch, in shard order.
 * `tokenizer` picks the cache (its hash); without it the directory must hold exactly one.
 * `views`: ids are views into the batch's buffer instead of copies (for consumers that do not
 * keep them past the batch); `docIds: false` leaves document ids empty (for consumers that only
 * need the tokens); `shard`: only that shard (its manifest entry).
 */
export async function* readTokenized(
  dir: string, tokenizer?: Tokenizer | string, opts: Pick<ReadDocsOptions, 'split'> & { views?: boolean; docIds?: boolean; shard?: ShardInfo } = {},
): AsyncGenerator<TokenizedDoc[]> {
  // One shard's entry, as the caller already has it from the manifest: no manifest read per shard.
  const shards = opts.shard ? [opts.shard] : (await readManifest(dir)).shards;
  let cdir: string;
  if (tokenizer) cdir = tokenCacheDir(dir, typeof tokenizer === 'string' ? tokenizer : tokenizer.hash);
  else {
    const all = await fs.readdir(path.join(dir, 'tokens')).catch(() => [] as string[]);
    if (all.length !== 1) throw new UserError(`${dir}: ${all.length === 0 ? 'no token cache; tokenize the corpus first' : `${all.length} token caches (one per tokenizer); say which tokenizer to use`}`);
    cdir = path.join(dir, 'tokens', all[0]);
  }
  for (const s of shards) {
    const c = await cachedShard(cdir, s);
    if (c.state === 'damaged') throw new UserError(`${c.file} fails its sha256 check (a damaged token cache); the next cpt select or cpt train re-tokenizes that shard`);
    if (c.state !== 'ok') throw new UserError(`${cdir}: no token cache for ${s.file}, or a stale one (the shard changed since); tokenize the corpus first`);
    const e = c.e;
    for await (const rb of readArrowBatches(path.join(cdir, e.file))) {
      // Decoding every id string is a good part of the read: skipped when nobody needs them.
      const ids = opts.docIds === false && !opts.split ? new Array<string>(rb.numRows).fill('') : (rb.getChild('id')!.toArray() as string[]);
      const data = rb.getChild('ids')!.data[0];
      const offsets = data.valueOffsets as Int32Array;
      const values = data.children[0].values as Int32Array;
      const base = data.children[0].offset;
      const out: TokenizedDoc[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (opts.split && isHeldOut(ids[i], opts.split.fraction) !== (opts.split.part === 'test')) continue;
        const a = base + offsets[data.offset + i], b = base + offsets[data.offset + i + 1];
        out.push({ id: ids[i], ids: opts.views ? values.subarray(a, b) : values.slice(a, b) });
      }
      if (out.length) yield out;
    }
  }
}
