/**
 * Corpus shards: Arrow IPC files of {id, text, source} record batches plus manifest.json.
 * Written atomically; re-preparing is skipped when inputs and spec are unchanged.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RecordBatch, RecordBatchFileWriter, RecordBatchReader, Utf8, vectorFromArray, type Vector } from 'apache-arrow';
import type { SourceSpec } from '../recipe/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256FileAsync } from '../util/hash.js';
import { lockDir } from '../util/lock.js';
import { UserError } from '../util/errors.js';
import type { Doc, SkipCounts } from './doc.js';
import { ReadContext, listFiles, readSource } from './formats/index.js';
import { isHeldOut } from './split.js';

export const CORPUS_FORMAT = 'cpt-corpus';
export const CORPUS_VERSION = 1;
export const MANIFEST = 'manifest.json';
/** Record batches are cut at about this many text bytes, so readers hold little at a time. */
const BATCH_BYTES = 4 << 20;

export interface ShardInfo {
  file: string;
  docs: number;
  /** UTF-8 bytes of the text column. */
  text_bytes: number;
  /** Size of the shard file. */
  bytes: number;
  sha256: string;
}

export interface SourceSummary {
  name: string;
  path: string;
  format: string;
  files: number;
  input_bytes: number;
  docs: number;
  text_bytes: number;
  skipped: SkipCounts;
}

export interface CorpusManifest {
  format: typeof CORPUS_FORMAT;
  version: number;
  /** sha256 over the specs and every input file's size and mtime. */
  fingerprint: string;
  created: string;
  shard_mb: number;
  sources: SourceSummary[];
  shards: ShardInfo[];
  totals: { docs: number; text_bytes: number; shard_bytes: number; input_bytes: number };
  skipped: SkipCounts;
}

export interface PrepareProgress {
  source: string;
  docs: number;
  inputBytes: number;
  totalInputBytes: number;
  shards: number;
}

export interface PrepareOptions {
  shardMb: number;
  onProgress?: (p: PrepareProgress) => void;
  /** Rebuild even when the manifest matches the inputs. */
  force?: boolean;
}

export interface PrepareResult extends CorpusManifest {
  /** True when an up-to-date manifest was found and nothing was rewritten. */
  reused: boolean;
}

async function fingerprint(specs: SourceSpec[], shardMb: number): Promise<{ fp: string; inputBytes: number; files: number[] }> {
  const h = createHash('sha256').update(JSON.stringify({ v: CORPUS_VERSION, specs, shardMb }));
  let inputBytes = 0;
  const files: number[] = [];
  for (const s of specs) {
    const list = await listFiles(s.path, s.include);
    files.push(list.length);
    for (const f of list) {
      h.update(`${f.abs}\0${f.size}\0${f.mtimeMs}\n`);
      inputBytes += f.size;
    }
  }
  return { fp: h.digest('hex'), inputBytes, files };
}

/** The manifest of a prepared corpus directory, checked for format and version. */
export async function readManifest(dir: string): Promise<CorpusManifest> {
  const file = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`${dir}: not a prepared corpus (no ${MANIFEST}); run \`cpt prepare\` first`);
  }
  let m: CorpusManifest;
  try {
    m = JSON.parse(text) as CorpusManifest;
  } catch (e) {
    throw new UserError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (m.format !== CORPUS_FORMAT || m.version !== CORPUS_VERSION) {
    throw new UserError(`${file}: expected format ${CORPUS_FORMAT} version ${CORPUS_VERSION}, found ${m.format} ${m.version}; re-run \`cpt prepare\``);
  }
  return m;
}

async function upToDate(dir: string, fp: string): Promise<CorpusManifest | null> {
  let m: CorpusManifest;
  try {
    m = await readManifest(dir);
  } catch {
    return null;
  }
  if (m.fingerprint !== fp) return null;
  for (const s of m.shards) {
    const st = await fs.stat(path.join(dir, s.file)).catch(() => null);
    if (!st || st.size !== s.bytes) return null;
  }
  return m;
}

/** Accumulates docs into record batches and batches into shard files of about shardMb. */
export class ShardWriter {
  readonly shards: ShardInfo[] = [];
  private batch: Doc[] = [];
  private batchBytes = 0;
  private writer: RecordBatchFileWriter | null = null;
  private shardDocs = 0;
  private shardTextBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly shardBytes: number,
  ) {}

  async add(doc: Doc): Promise<void> {
    this.batch.push(doc);
    this.batchBytes += Buffer.byteLength(doc.text) + doc.id.length + doc.source.length;
    if (this.batchBytes >= BATCH_BYTES) this.flushBatch();
    if (this.shardTextBytes + this.batchBytes >= this.shardBytes) await this.closeShard();
  }

  private flushBatch(): void {
    if (!this.batch.length) return;
    const col = (f: (d: Doc) => string): Vector => vectorFromArray(this.batch.map(f), new Utf8());
    const rb = new RecordBatch({ id: col((d) => d.id).data[0], text: col((d) => d.text).data[0], source: col((d) => d.source).data[0] });
    this.writer ??= new RecordBatchFileWriter();
    this.writer.write(rb);
    this.shardDocs += this.batch.length;
    this.shardTextBytes += this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
  }

  async closeShard(): Promise<void> {
    this.flushBatch();
    if (!this.writer) return;
    this.writer.finish();
    const bytes = this.writer.toUint8Array(true);
    this.writer = null;
    const file = `shard-${String(this.shards.length).padStart(5, '0')}.arrow`;
    await writeFileAtomic(path.join(this.dir, file), bytes);
    this.shards.push({
      file,
      docs: this.shardDocs,
      text_bytes: this.shardTextBytes,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    this.shardDocs = 0;
    this.shardTextBytes = 0;
  }
}

/**
 * Reads every source and writes shards + manifest.json into outDir. Returns the existing
 * manifest untouched when it was made from the same specs and unchanged input files.
 */
/** The prepared corpus when it is up to date with its sources, else null; nothing is written. */
export async function preparedManifest(specs: SourceSpec[], outDir: string, shardMb: number): Promise<CorpusManifest | null> {
  return upToDate(outDir, (await fingerprint(specs, shardMb)).fp);
}

export async function prepareCorpus(specs: SourceSpec[], outDir: string, opts: PrepareOptions): Promise<PrepareResult> {
  if (!(opts.shardMb > 0)) throw new UserError(`shard size must be a positive number of MB, got ${opts.shardMb}`);
  if (specs.length === 0) throw new UserError('no sources to prepare');
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new UserError(`two sources are named "${s.name}"; names label documents and must be unique`);
    names.add(s.name);
  }
  const st = await fs.stat(outDir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new UserError(`${outDir}: exists and is not a directory; the prepared corpus needs a directory of its own`);
  const { fp, inputBytes, files } = await fingerprint(specs, opts.shardMb);
  if (!opts.force) {
    const m = await upToDate(outDir, fp);
    if (m) return { ...m, reused: true };
  }
  await fs.mkdir(outDir, { recursive: true });
  const release = lockDir(outDir, 'cpt prepare');
  try {
    // Another process may have finished the same preparation while we waited for nothing.
    const m = opts.force ? undefined : await upToDate(outDir, fp);
    if (m) return { ...m, reused: true };
    return await writeCorpus(specs, outDir, opts, fp, inputBytes, files);
  } finally {
    release();
  }
}

async function writeCorpus(specs: SourceSpec[], outDir: string, opts: PrepareOptions, fp: string, inputBytes: number, files: Awaited<ReturnType<typeof fingerprint>>['files']): Promise<PrepareResult> {
  // The old manifest must not outlive the shards it describes.
  await fs.rm(path.join(outDir, MANIFEST), { force: true });

  const writer = new ShardWriter(outDir, opts.shardMb * 1024 * 1024);
  const sources: SourceSummary[] = [];
  const seen = new Map<string, string>();
  let docs = 0;
  let doneBytes = 0;
  for (const [i, spec] of specs.entries()) {
    const ctx = new ReadContext({ ...spec, fields: [...spec.fields] });
    const sum: SourceSummary = { name: spec.name, path: spec.path, format: spec.format, files: files[i], input_bytes: 0, docs: 0, text_bytes: 0, skipped: ctx.skipped };
    let lastReport = 0;
    for await (const doc of readSource(ctx)) {
      const key = doc.id;
      const prev = seen.get(key);
      if (prev !== undefined) {
        throw new UserError(`source "${spec.name}": document id "${doc.id}" occurs twice (also in "${prev}"); ids must be unique (set id_field, or check for duplicated input files)`);
      }
      seen.set(key, spec.name);
      await writer.add(doc);
      sum.docs++;
      sum.text_bytes += Buffer.byteLength(doc.text);
      docs++;
      const now = Date.now();
      if (opts.onProgress && now - lastReport > 200) {
        lastReport = now;
        opts.onProgress({ source: spec.name, docs, inputBytes: doneBytes + ctx.bytesRead, totalInputBytes: inputBytes, shards: writer.shards.length });
      }
    }
    sum.input_bytes = ctx.bytesRead;
    doneBytes += ctx.bytesRead;
    sources.push(sum);
    opts.onProgress?.({ source: spec.name, docs, inputBytes: doneBytes, totalInputBytes: inputBytes, shards: writer.shards.length });
  }
  await writer.closeShard();
  if (docs === 0) throw new UserError(`no documents were read from ${specs.map((s) => s.path).join(', ')}`);

  const skipped: SkipCounts = {};
  for (const s of sources) for (const [k, v] of Object.entries(s.skipped)) skipped[k] = (skipped[k] ?? 0) + v;
  const manifest: CorpusManifest = {
    format: CORPUS_FORMAT,
    version: CORPUS_VERSION,
    fingerprint: fp,
    created: new Date().toISOString(),
    shard_mb: opts.shardMb,
    sources,
    shards: writer.shards,
    totals: {
      docs,
      text_bytes: sources.reduce((a, s) => a + s.text_bytes, 0),
      shard_bytes: writer.shards.reduce((a, s) => a + s.bytes, 0),
      input_bytes: doneBytes,
    },
    skipped,
  };
  // Shards left from an earlier, larger preparation.
  const keep = new Set(writer.shards.map((s) => s.file));
  for (const f of await fs.readdir(outDir)) if (/^shard-\d+\.arrow$/.test(f) && !keep.has(f)) await fs.rm(path.join(outDir, f), { force: true });
  await writeFileAtomic(path.join(outDir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  return { ...manifest, reused: false };
}

export interface ReadDocsOptions {
  /** Keep only the training part (`train`) or the held-out part (`test`) of the id-hash split. */
  split?: { fraction: number; part: 'train' | 'test' };
  /** Only these source names. */
  sources?: string[];
}

/** Column `name` of a record batch as strings. */
function strings(rb: RecordBatch, name: string): string[] {
  const v = rb.getChild(name);
  if (!v) throw new UserError(`shard lacks column "${name}"`);
  return v.toArray() as string[];
}

/** Streams a prepared corpus record batch by record batch, in shard order. */
export async function* readDocs(dir: string, opts: ReadDocsOptions = {}): AsyncGenerator<Doc[]> {
  const m = await readManifest(dir);
  const only = opts.sources ? new Set(opts.sources) : null;
  const keep = (d: Doc): boolean => (!only || only.has(d.source)) && (!opts.split || isHeldOut(d.id, opts.split.fraction) === (opts.split.part === 'test'));
  for (const s of m.shards) {
    for await (const docs of readShardDocs(dir, s)) {
      const out = only || opts.split ? docs.filter(keep) : docs;
      if (out.length) yield out;
    }
  }
}

/** One shard's documents, record batch by record batch (its size checked against the manifest's). */
export async function* readShardDocs(dir: string, shard: Pick<ShardInfo, 'file' | 'bytes'>): AsyncGenerator<Doc[]> {
  for await (const rb of readArrowBatches(path.join(dir, shard.file), shard.bytes)) {
    const ids = strings(rb, 'id');
    const texts = strings(rb, 'text');
    const srcs = strings(rb, 'source');
    yield ids.map((id, i) => ({ id, text: texts[i], source: srcs[i] }));
  }
}

/**
 * Record batches of an Arrow IPC file, read through a file handle (one batch in memory at a time).
 * With `bytes` (the manifest's size), a shard changed or cut short since it was written is an error.
 */
export async function* readArrowBatches(file: string, bytes?: number): AsyncGenerator<RecordBatch> {
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    throw new UserError(`${file}: cannot open (missing shard? re-run \`cpt prepare\`)`);
  }
  try {
    const size = (await fh.stat()).size;
    if (bytes !== undefined && size !== bytes) throw new UserError(`${file}: ${size} bytes, the manifest says ${bytes}: changed or truncated since it was prepared; re-run \`cpt prepare --force\``);
    const reader = await RecordBatchReader.from(fh);
    await reader.open();
    for await (const rb of reader) yield rb;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

export interface ShardCheck {
  file: string;
  ok: boolean;
  /** What is wrong: missing, size or checksum. */
  problem?: string;
}

/** Checks every shard of a prepared corpus against its manifest (size and streamed sha256). */
export async function verifyCorpus(dir: string): Promise<ShardCheck[]> {
  const m = await readManifest(dir);
  const out: ShardCheck[] = [];
  for (const s of m.shards) {
    const file = path.join(dir, s.file);
    const st = await fs.stat(file).catch(() => null);
    if (!st) out.push({ file, ok: false, problem: 'missing' });
    else if (st.size !== s.bytes) out.push({ file, ok: false, problem: `size ${st.size}, manifest ${s.bytes}` });
    else {
      const got = await sha256FileAsync(file);
      out.push(got === s.sha256 ? { file, ok: true } : { file, ok: false, problem: `sha256 ${got.slice(0, 12)}…, manifest ${s.sha256.slice(0, 12)}…` });
    }
  }
  return out;
}
