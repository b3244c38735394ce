/**
 * Token cache: each shard tokenized once into `<dir>/tokens/<tokenizer hash>/<shard>.tokens.arrow`
 * ({id: Utf8, ids: List<Int32>}), keyed by the tokenizer's hash and the shard's sha256.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Field, Int32, List, RecordBatch, RecordBatchFileWriter, Utf8, makeData, vectorFromArray } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { readArrowBatches, readManifest, type ReadDocsOptions } from './shards.js';
import { isHeldOut } from './split.js';
import type { Tokenizer } from './tokenizer.js';

export interface TokenizedDoc {
  id: string;
  ids: Int32Array;
}

interface CacheIndex {
  tokenizer: string;
  shards: { shard: string; sha256: string; file: string; docs: number; tokens: number }[];
  tokens: number;
  docs: number;
}

export interface TokenizeProgress {
  docs: number;
  tokens: number;
  totalDocs: number;
}

export interface TokenizeOptions {
  onProgress?: (p: TokenizeProgress) => void;
  /** Documents handed to encodeBatch at once. */
  batchDocs?: number;
}

function cacheDir(dir: string, tokenizerHash: string): string {
  return path.join(dir, 'tokens', tokenizerHash.slice(0, 16));
}

const INDEX = 'index.json';

async function readIndex(file: string): Promise<CacheIndex | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as CacheIndex;
  } catch {
    return null;
  }
}

/** Tokenizes every shard not yet cached for this tokenizer; returns the total token count. */
export async function tokenizeCorpus(dir: string, tokenizer: Tokenizer, opts: TokenizeOptions = {}): Promise<{ tokens: number; docs: number }> {
  const m = await readManifest(dir);
  const cdir = cacheDir(dir, tokenizer.hash);
  const old = await readIndex(path.join(cdir, INDEX));
  const index: CacheIndex = { tokenizer: tokenizer.hash, shards: [], tokens: 0, docs: 0 };
  const totalDocs = m.totals.docs;
  let doneDocs = 0;
  let doneTokens = 0;
  for (const s of m.shards) {
    const file = s.file.replace(/\.arrow$/, '.tokens.arrow');
    const hit = old?.shards.find((x) => x.shard === s.file && x.sha256 === s.sha256);
    if (hit && (await fs.stat(path.join(cdir, file)).catch(() => null))) {
      index.shards.push(hit);
      doneDocs += hit.docs;
      doneTokens += hit.tokens;
      opts.onProgress?.({ docs: doneDocs, tokens: doneTokens, totalDocs });
      continue;
    }
    const writer = new RecordBatchFileWriter();
    let docs = 0;
    let tokens = 0;
    for await (const batch of readShardDocs(dir, s.file, s.bytes)) {
      const batchDocs = opts.batchDocs ?? 2048;
      for (let i = 0; i < batch.length; i += batchDocs) {
        const part = batch.slice(i, i + batchDocs);
        const ids = await tokenizer.encodeBatch(part.map((d) => d.text));
        writer.write(tokenBatch(part.map((d) => d.id), ids));
        docs += part.length;
        for (const a of ids) tokens += a.length;
        opts.onProgress?.({ docs: doneDocs + docs, tokens: doneTokens + tokens, totalDocs });
      }
    }
    writer.finish();
    await writeFileAtomic(path.join(cdir, file), writer.toUint8Array(true));
    index.shards.push({ shard: s.file, sha256: s.sha256, file, docs, tokens });
    doneDocs += docs;
    doneTokens += tokens;
  }
  index.tokens = doneTokens;
  index.docs = doneDocs;
  await writeFileAtomic(path.join(cdir, INDEX), JSON.stringify(index, null, 2) + '\n');
  return { tokens: doneTokens, docs: doneDocs };
}

/** Docs of one shard (readDocs restricted to a single file). */
async function* readShardDocs(dir: string, shard: string, bytes: number): AsyncGenerator<{ id: string; text: string }[]> {
  for await (const rb of readArrowBatches(path.join(dir, shard), bytes)) {
    const ids = rb.getChild('id')!.toArray() as string[];
    const texts = rb.getChild('text')!.toArray() as string[];
    yield ids.map((id, i) => ({ id, text: texts[i] }));
  }
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
 * need the tokens).
 */
export async function* readTokenized(dir: string, tokenizer?: Tokenizer | string, opts: Pick<ReadDocsOptions, 'split'> & { views?: boolean; docIds?: boolean } = {}): AsyncGenerator<TokenizedDoc[]> {
  const m = await readManifest(dir);
  let cdir: string;
  if (tokenizer) cdir = cacheDir(dir, typeof tokenizer === 'string' ? tokenizer : tokenizer.hash);
  else {
    const all = await fs.readdir(path.join(dir, 'tokens')).catch(() => [] as string[]);
    if (all.length !== 1) throw new UserError(`${dir}: ${all.length === 0 ? 'no token cache; tokenize the corpus first' : `${all.length} token caches (one per tokenizer); say which tokenizer to use`}`);
    cdir = path.join(dir, 'tokens', all[0]);
  }
  const index = await readIndex(path.join(cdir, INDEX));
  if (!index) throw new UserError(`${dir}: no token cache for this tokenizer (${cdir}); tokenize the corpus first`);
  for (const s of m.shards) {
    const e = index.shards.find((x) => x.shard === s.file && x.sha256 === s.sha256);
    if (!e) throw new UserError(`${cdir}: token cache is stale for ${s.file} (shard changed); tokenize the corpus again`);
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
