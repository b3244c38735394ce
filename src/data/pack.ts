/**
 * Packing: documents in a seeded shuffle, each followed by EOS, concatenated and cut into rows of
 * exactly seqLen tokens (the incomplete tail is dropped and counted). Output: `<out>` (JSON header)
 * and `<out>.bin` next to it holding little-endian uint16 tokens (int32 when ids exceed 65535).
 * Memory is O(documents): tokens go to a spill file first, then are copied out in shuffled order.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, fsyncDir, spaceError } from '../util/atomic.js';
import { removeDeadWriters } from '../util/lock.js';
import { UserError } from '../util/errors.js';
import { mulberry32 } from '../util/rng.js';

export const PACKED_FORMAT = 'cpt-packed';

export interface PackedManifest {
  format: typeof PACKED_FORMAT;
  version: 1;
  seqLen: number;
  /** Rows of seqLen tokens. */
  count: number;
  dtype: 'uint16' | 'int32';
  /** Token file, relative to the header's directory. */
  tokensFile: string;
  sha256: string;
  seed: number;
  eosId: number;
  docs: number;
  /** Tokens in rows (count * seqLen). */
  tokens: number;
  /** Tokens (docs + EOS) cut off after the last full row. */
  droppedTailTokens: number;
}

export interface PackInput {
  /** Documents one by one or in batches (as readTokenized yields them). */
  docs: AsyncIterable<{ id: string; ids: Int32Array } | { id: string; ids: Int32Array }[]>;
  seqLen: number;
  seed: number;
  /** Header path (e.g. `train.packed.json`); tokens go to the same path + `.bin`. */
  out: string;
  eosId?: number;
  onProgress?: (docs: number) => void;
}

export function shuffle(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const r = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

export async function packDocuments(input: PackInput): Promise<PackedManifest> {
  const { seqLen, seed, out } = input;
  const eos = input.eosId ?? 0;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new UserError(`seq_len must be an integer ≥ 2, got ${seqLen}`);
  await fs.mkdir(path.dirname(out), { recursive: true });
  // Spill and temp files of packers that were killed: their pid is in the name.
  const base = path.basename(out).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  removeDeadWriters(path.dirname(out), new RegExp(`^${base}(?:\\.spill|\\.bin\\.tmp)-(\\d+)$`));
  const spill = `${out}.spill-${process.pid}`;
  const binTmp = `${out}.bin.tmp-${process.pid}`;
  const binFile = `${out}.bin`;
  let need: number | undefined; // bytes of the rows, once known
  let done = false;
  try {
    // Pass 1: every doc's tokens to the spill file (int32), remembering where each starts.
    const starts: number[] = [];
    const lens: number[] = [];
    let total = 0;
    let maxId = eos;
    const fd = openSync(spill, 'w');
    try {
      const handle = (d: { id: string; ids: Int32Array }) => {
        starts.push(total);
        lens.push(d.ids.length);
        total += d.ids.length;
        for (let i = 0; i < d.ids.length; i++) if (d.ids[i] > maxId) maxId = d.ids[i];
        if (d.ids.length) writeSync(fd, new Uint8Array(d.ids.buffer, d.ids.byteOffset, d.ids.byteLength));
      };
      for await (const item of input.docs) {
        if (Array.isArray(item)) item.forEach(handle);
        else handle(item);
        input.onProgress?.(starts.length);
      }
    } finally {
      closeSync(fd);
    }
    const n = starts.length;
    const stream = total + n; // each doc followed by EOS
    const count = Math.floor(stream / seqLen);
    const dtype: PackedManifest['dtype'] = maxId > 65535 ? 'int32' : 'uint16';
    const width = dtype === 'uint16' ? 2 : 4;
    need = count * seqLen * width;

    // Pass 2: shuffled docs + EOS into rows; stop at the last full row.
    const order = shuffle(n, seed);
    const src = openSync(spill, 'r');
    const dst = openSync(binTmp, 'w');
    const hash = createHash('sha256');
    const want = count * seqLen;
    let written = 0;
    const OUT = 1 << 20;
    const buf = dtype === 'uint16' ? new Uint16Array(OUT) : new Int32Array(OUT);
    let fill = 0;
    const flush = () => {
      const bytes = new Uint8Array(buf.buffer, 0, fill * width);
      writeSync(dst, bytes);
      hash.update(bytes);
      fill = 0;
    };
    const put = (tok: number) => {
      if (written >= want) return;
      buf[fill++] = tok;
      written++;
      if (fill === OUT) flush();
    };
    try {
      let tmp = new Int32Array(1 << 16);
      for (let k = 0; k < n && written < want; k++) {
        const d = order[k];
        const len = lens[d];
        if (len > tmp.length) tmp = new Int32Array(len);
        if (len) readSync(src, new Uint8Array(tmp.buffer, 0, len * 4), 0, len * 4, starts[d] * 4);
        for (let i = 0; i < len; i++) put(tmp[i]);
        put(eos);
      }
      flush();
      fsyncSync(dst);
    } finally {
      closeSync(src);
      closeSync(dst);
    }
    renameSync(binTmp, binFile);
    await fsyncDir(path.dirname(out));
    const manifest: PackedManifest = {
      format: PACKED_FORMAT,
      version: 1,
      seqLen,
      count,
      dtype,
      tokensFile: path.basename(binFile),
      sha256: hash.digest('hex'),
      seed,
      eosId: eos,
      docs: n,
      tokens: want,
      droppedTailTokens: stream - want,
    };
    await writeFileAtomic(out, JSON.stringify(manifest, null, 2) + '\n');
    done = true;
    return manifest;
  } catch (e) {
    throw spaceError(e, `${out} (packed rows)`, need, path.dirname(out));
  } finally {
    rmSync(spill, { force: true });
    rmSync(binTmp, { force: true });
    if (!done) rmSync(binFile, { force: true }); // rows without their header are never left behind
  }
}

export interface PackedDataset {
  readonly seqLen: number;
  /** Rows. */
  readonly count: number;
  /** Tokens in all rows. */
  readonly tokens: number;
  readonly manifest: PackedManifest;
  /** Rows start..start+n-1, flattened ([n, seqLen] row-major). */
  read(start: number, n: number): Int32Array;
  close(): void;
}

/** Opens a packed dataset by its header path (or the `.bin` beside it) for random access. */
export function openPacked(file: string): PackedDataset {
  const header = file.endsWith('.bin') ? file.slice(0, -4) : file;
  let m: PackedManifest;
  try {
    m = JSON.parse(readHeader(header)) as PackedManifest;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${header}: invalid packed header (${(e as Error).message})`);
  }
  if (m.format !== PACKED_FORMAT) throw new UserError(`${header}: not a packed dataset (format ${String(m.format)})`);
  const bin = path.join(path.dirname(header), m.tokensFile);
  const width = m.dtype === 'uint16' ? 2 : 4;
  let size: number;
  try {
    size = statSync(bin).size;
  } catch {
    throw new UserError(`${bin}: missing token file of ${header}`);
  }
  if (size !== m.count * m.seqLen * width) throw new UserError(`${bin}: ${size} bytes, expected ${m.count * m.seqLen * width} (${m.count} rows × ${m.seqLen} × ${width}); re-pack`);
  const fd = openSync(bin, 'r');
  let open = true;
  return {
    seqLen: m.seqLen,
    count: m.count,
    tokens: m.count * m.seqLen,
    manifest: m,
    read(start: number, n: number): Int32Array {
      if (!open) throw new Error('packed dataset is closed');
      if (!Number.isInteger(start) || !Number.isInteger(n) || start < 0 || n < 0 || start + n > m.count) {
        throw new RangeError(`rows ${start}..${start + n} outside 0..${m.count}`);
      }
      const k = n * m.seqLen;
      const bytes = Buffer.alloc(k * width);
      readSync(fd, bytes, 0, bytes.length, start * m.seqLen * width);
      const out = new Int32Array(k);
      if (width === 2) for (let i = 0; i < k; i++) out[i] = bytes.readUInt16LE(i * 2);
      else for (let i = 0; i < k; i++) out[i] = bytes.readInt32LE(i * 4);
      return out;
    },
    close(): void {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

function readHeader(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: cannot read packed dataset header`);
  }
}
