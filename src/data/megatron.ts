/**
 * The Megatron / GPT-NeoX memory-mapped indexed dataset (`PREFIX.bin` + `PREFIX.idx`), the format
 * GPT-NeoX's `tools/datasets/preprocess_data.py` writes and `megatron/data/indexed_dataset.py`
 * (MMapIndexedDataset) reads:
 *   .bin  every item's tokens back to back (dtype below)
 *   .idx  "MMIDIDX\0\0" | u64 version = 1 | u8 dtype code | u64 items | u64 doc-index length
 *         | i32 size[items] | i64 byte pointer[items] | i64 doc index[docs + 1]
 * Dtype codes are Megatron's (4 = int32, 8 = uint16); uint16 is its choice for vocabularies
 * under 65,500 tokens. Here one document is one item (its ids plus EOD), so the doc index is
 * 0, 1, ..., n, as preprocess_data.py --append-eod produces. Little-endian throughout.
 */
import { closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { spaceError } from '../util/atomic.js';

export const MMIDIDX_MAGIC = Buffer.from([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0x00, 0x00]);
export type MegatronDtype = 'uint16' | 'int32';
const CODE: Record<MegatronDtype, number> = { uint16: 8, int32: 4 };
const BYTES: Record<MegatronDtype, number> = { uint16: 2, int32: 4 };

/** Megatron's choice: uint16 below 65,500 token ids, else int32. */
export function bestDtype(vocabSize: number): MegatronDtype {
  return vocabSize < 65500 ? 'uint16' : 'int32';
}

/** Streams documents into PREFIX.bin / PREFIX.idx (temp files renamed at finish: atomic). */
export class MegatronWriter {
  private readonly fd: number;
  private readonly buf: Buffer;
  private used = 0;
  private sizes: number[] = [];
  tokens = 0;

  constructor(readonly prefix: string, readonly dtype: MegatronDtype, private readonly vocabSize: number) {
    if (dtype === 'uint16' && vocabSize > 65536) {
      throw new UserError(`${prefix}: a ${vocabSize}-token vocabulary does not fit uint16 (ids up to 65,535); use int32`);
    }
    this.fd = openSync(this.tmp('.bin'), 'w');
    this.buf = Buffer.allocUnsafe(16 << 20);
  }

  private tmp(ext: string): string {
    return `${this.prefix}${ext}.tmp-${process.pid}`;
  }

  /** One document: its ids, then `eod` when given. */
  add(ids: Int32Array, eod?: number): void {
    const n = ids.length + (eod === undefined ? 0 : 1);
    const w = BYTES[this.dtype];
    if (this.used + n * w > this.buf.length) this.flush();
    if (n * w > this.buf.length) {
      // A document larger than the buffer: write it on its own.
      const big = Buffer.allocUnsafe(n * w);
      this.encode(ids, eod, big, 0);
      this.write(big);
    } else {
      this.encode(ids, eod, this.buf, this.used);
      this.used += n * w;
    }
    this.sizes.push(n);
    this.tokens += n;
  }

  private encode(ids: Int32Array, eod: number | undefined, out: Buffer, at: number): void {
    const n = ids.length;
    if (this.dtype === 'uint16') {
      const v = new Uint16Array(out.buffer, out.byteOffset + at, n + (eod === undefined ? 0 : 1));
      const vocab = this.vocabSize;
      for (let i = 0; i < n; i++) if (ids[i] >>> 0 >= vocab) throw new UserError(`${this.prefix}: token id ${ids[i]} is outside the vocabulary [0, ${vocab})`);
      v.set(ids);
      if (eod !== undefined) v[n] = eod;
    } else {
      const v = new Int32Array(out.buffer, out.byteOffset + at, n + (eod === undefined ? 0 : 1));
      v.set(ids);
      if (eod !== undefined) v[n] = eod;
    }
  }

  private write(b: Buffer): void {
    try {
      for (let off = 0; off < b.length; ) off += writeSync(this.fd, b, off, b.length - off);
    } catch (e) {
      this.abort();
      throw spaceError(e, `${this.prefix}.bin`, undefined, path.dirname(this.prefix));
    }
  }

  private flush(): void {
    if (this.used) this.write(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  /** Write the index, fsync both files and move them into place. */
  finish(): { docs: number; tokens: number } {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    const idx = encodeIndex(this.sizes, this.dtype);
    try {
      const fd = openSync(this.tmp('.idx'), 'w');
      writeSync(fd, idx);
      fsyncSync(fd);
      closeSync(fd);
    } catch (e) {
      this.abort();
      throw spaceError(e, `${this.prefix}.idx`, idx.length, path.dirname(this.prefix));
    }
    renameSync(this.tmp('.bin'), `${this.prefix}.bin`);
    renameSync(this.tmp('.idx'), `${this.prefix}.idx`);
    return { docs: this.sizes.length, tokens: this.tokens };
  }

  abort(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    rmSync(this.tmp('.bin'), { force: true });
    rmSync(this.tmp('.idx'), { force: true });
  }
}

/** The .idx bytes for items of the given sizes, one item per document. */
export function encodeIndex(sizes: readonly number[], dtype: MegatronDtype): Buffer {
  const n = sizes.length;
  const head = 9 + 8 + 1 + 8 + 8;
  const b = Buffer.alloc(head + 4 * n + 8 * n + 8 * (n + 1));
  MMIDIDX_MAGIC.copy(b, 0);
  b.writeBigUInt64LE(1n, 9);
  b.writeUInt8(CODE[dtype], 17);
  b.writeBigUInt64LE(BigInt(n), 18);
  b.writeBigUInt64LE(BigInt(n + 1), 26);
  let at = head;
  for (const s of sizes) b.writeInt32LE(s, (at += 4) - 4);
  let ptr = 0n;
  for (const s of sizes) {
    b.writeBigInt64LE(ptr, at);
    at += 8;
    ptr += BigInt(s * BYTES[dtype]);
  }
  for (let i = 0; i <= n; i++) b.writeBigInt64LE(BigInt(i), (at += 8) - 8);
  return b;
}

export interface MegatronDataset {
  dtype: MegatronDtype;
  /** Items (sequences) and documents (doc index entries - 1). */
  items: number;
  docs: number;
  tokens: number;
  sizes: Int32Array;
  docIndex: BigInt64Array;
  /** The ids of item i. */
  item(i: number): Int32Array;
  close(): void;
}

/** Open PREFIX (or PREFIX.idx / PREFIX.bin) written by Megatron, GPT-NeoX or cpt. */
export function openMegatron(prefixOrFile: string): MegatronDataset {
  const prefix = prefixOrFile.replace(/\.(idx|bin)$/, '');
  const idxFile = `${prefix}.idx`, binFile = `${prefix}.bin`;
  let idx: Buffer;
  try {
    idx = readFileSync(idxFile);
  } catch {
    throw new UserError(`${idxFile}: cannot read (expected a Megatron indexed dataset PREFIX.idx + PREFIX.bin)`);
  }
  if (idx.length < 34 || !idx.subarray(0, 9).equals(MMIDIDX_MAGIC)) throw new UserError(`${idxFile}: not a Megatron mmap index (magic MMIDIDX\\x00\\x00 expected)`);
  const version = idx.readBigUInt64LE(9);
  if (version !== 1n) throw new UserError(`${idxFile}: index version ${version}, expected 1`);
  const code = idx.readUInt8(17);
  const dtype = (Object.keys(CODE) as MegatronDtype[]).find((k) => CODE[k] === code);
  if (!dtype) throw new UserError(`${idxFile}: dtype code ${code} is not supported (4 = int32, 8 = uint16)`);
  const n = Number(idx.readBigUInt64LE(18)), nd = Number(idx.readBigUInt64LE(26));
  const head = 34;
  if (idx.length !== head + 12 * n + 8 * nd) throw new UserError(`${idxFile}: ${idx.length} bytes, but ${n} items and ${nd} doc-index entries need ${head + 12 * n + 8 * nd}`);
  const copy = (at: number, bytes: number) => idx.buffer.slice(idx.byteOffset + at, idx.byteOffset + at + bytes);
  const sizes = new Int32Array(copy(head, 4 * n));
  const pointers = new BigInt64Array(copy(head + 4 * n, 8 * n));
  const docIndex = new BigInt64Array(copy(head + 12 * n, 8 * nd));
  const w = BYTES[dtype];
  let tokens = 0;
  for (let i = 0; i < n; i++) tokens += sizes[i];
  const binSize = statSync(binFile, { throwIfNoEntry: false })?.size;
  if (binSize === undefined) throw new UserError(`${binFile}: missing`);
  if (binSize !== tokens * w) throw new UserError(`${binFile}: ${binSize} bytes, the index says ${tokens * w}`);
  const fd = openSync(binFile, 'r');
  return {
    dtype, items: n, docs: nd - 1, tokens, sizes, docIndex,
    item(i) {
      if (i < 0 || i >= n) throw new RangeError(`item ${i} of ${n}`);
      const raw = Buffer.alloc(sizes[i] * w);
      readSync(fd, raw, 0, raw.length, Number(pointers[i]));
      return dtype === 'uint16' ? Int32Array.from(new Uint16Array(raw.buffer, raw.byteOffset, sizes[i])) : new Int32Array(raw.buffer, raw.byteOffset, sizes[i]);
    },
    close() {
      closeSync(fd);
    },
  };
}
