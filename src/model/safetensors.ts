/**
 * Hugging Face safetensors, read and written tensor by tensor.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`, then the data.
 * Reads use positioned fs reads per tensor (never the whole file in one buffer), so a 6.9B
 * checkpoint costs one tensor of memory at a time. Host byte order is assumed little-endian (x86,
 * arm64), as the format requires.
 */
import { openSync, readSync, closeSync, writeSync, fsyncSync, renameSync, mkdirSync, existsSync, statSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { fsyncDirSync } from '../util/atomic.js';

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'F64';
const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, F64: 8 };

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** The file holding it (shards differ) and its absolute byte range there. */
  file: string;
  begin: number;
  end: number;
}

export interface SafetensorsReader {
  /** Every tensor, in file order (shard by shard). */
  readonly tensors: Map<string, TensorInfo>;
  /** `__metadata__` of the first file (shards repeat it). */
  readonly metadata: Record<string, string>;
  /** Float tensors upcast to float32; an integer tensor is refused, naming it. */
  read(name: string): Float32Array;
  /** I32/I64 tensors as int32 (input ids and the like). */
  readInt32(name: string): Int32Array;
  close(): void;
}

/** Reads happen in slices of this many bytes: fs.read takes at most 2 GiB per call. */
const READ_CHUNK = 1 << 28;

interface Header { tensors: TensorInfo[]; metadata: Record<string, string> }

function parseHeader(file: string, fd: number): Header {
  const size = statSync(file).size;
  if (size < 8) throw new UserError(`${file}: not a safetensors file (only ${size} bytes)`);
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const n = Number(lenBuf.readBigUInt64LE(0));
  if (n <= 1 || 8 + n > size || n > 100 * 1024 * 1024) {
    throw new UserError(`${file}: not a safetensors file (header length ${n} for a file of ${size} bytes)`);
  }
  const hb = Buffer.alloc(n);
  readSync(fd, hb, 0, n, 8);
  let json: unknown;
  try {
    json = JSON.parse(hb.toString('utf8'));
  } catch (e) {
    throw new UserError(`${file}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UserError(`${file}: safetensors header is not a JSON object`);
  const dataStart = 8 + n;
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t?.dtype !== 'string' || !(t.dtype in DTYPE_BYTES)) {
      throw new UserError(`${file}: tensor "${name}" has dtype ${JSON.stringify(t?.dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new UserError(`${file}: tensor "${name}" has an invalid shape ${JSON.stringify(t.shape)}`);
    }
    const off = t.data_offsets as number[];
    const dtype = t.dtype as Dtype;
    const numel = (t.shape as number[]).reduce((a, b) => a * b, 1);
    if (!Array.isArray(off) || off.length !== 2 || off[1] - off[0] !== numel * DTYPE_BYTES[dtype] || dataStart + off[1] > size) {
      throw new UserError(`${file}: tensor "${name}" data_offsets ${JSON.stringify(off)} do not match ${dtype}${JSON.stringify(t.shape)} within a ${size}-byte file`);
    }
    tensors.push({ name, dtype, shape: t.shape as number[], file, begin: dataStart + off[0], end: dataStart + off[1] });
  }
  tensors.sort((a, b) => a.begin - b.begin);
  return { tensors, metadata };
}

/** The weight files of a checkpoint: a directory, a `.safetensors` file, or a `*.index.json`. */
function resolveFiles(p: string): string[] {
  if (!existsSync(p)) throw new UserError(`${p}: no such file or directory`);
  let target = p;
  if (statSync(p).isDirectory()) {
    const single = path.join(p, 'model.safetensors');
    const index = path.join(p, 'model.safetensors.index.json');
    if (existsSync(single)) target = single;
    else if (existsSync(index)) target = index;
    else {
      const bin = existsSync(path.join(p, 'pytorch_model.bin')) ? ' (found pytorch_model.bin: convert it to safetensors first)' : '';
      throw new UserError(`${p}: no model.safetensors or model.safetensors.index.json${bin}`);
    }
  }
  if (!target.endsWith('.json')) return [target];
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(readFileSync(target, 'utf8'));
  } catch (e) {
    throw new UserError(`${target}: not valid JSON (${(e as Error).message})`);
  }
  if (!index.weight_map || typeof index.weight_map !== 'object') throw new UserError(`${target}: missing key "weight_map" (tensor name → shard file)`);
  const shards = [...new Set(Object.values(index.weight_map))];
  return shards.map((s) => {
    const f = path.join(path.dirname(target), s);
    if (!existsSync(f)) throw new UserError(`${target}: shard "${s}" listed in weight_map does not exist`);
    return f;
  });
}

export function openSafetensors(p: string): SafetensorsReader {
  const files = resolveFiles(p);
  const fds = new Map<string, number>();
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  try {
    for (const f of files) {
      const fd = openSync(f, 'r');
      fds.set(f, fd);
      const h = parseHeader(f, fd);
      if (fds.size === 1) metadata = h.metadata;
      for (const t of h.tensors) {
        if (tensors.has(t.name)) throw new UserError(`${f}: tensor "${t.name}" also appears in ${tensors.get(t.name)!.file}`);
        tensors.set(t.name, t);
      }
    }
  } catch (e) {
    for (const fd of fds.values()) closeSync(fd);
    throw e;
  }
  const info = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw new UserError(`${p}: no tensor named "${name}"`);
    return t;
  };
  const readBytes = (t: TensorInfo, dst: Uint8Array): void => {
    const fd = fds.get(t.file);
    if (fd === undefined) throw new Error(`${t.file}: reader is closed`);
    for (let done = 0; done < dst.length; ) {
      const n = readSync(fd, dst, done, Math.min(READ_CHUNK, dst.length - done), t.begin + done);
      if (n <= 0) throw new UserError(`${t.file}: unexpected end of file reading "${t.name}"`);
      done += n;
    }
  };
  return {
    tensors,
    metadata,
    read(name) {
      const t = info(name);
      // An integer tensor where floats are expected is a wrong file, not something to cast.
      if (t.dtype === 'I32' || t.dtype === 'I64') throw new UserError(`${t.file}: tensor "${name}" is ${t.dtype}, an integer type; expected a float tensor (F32, F16, BF16 or F64)`);
      const numel = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
      const out = new Float32Array(numel);
      if (t.dtype === 'F32') {
        readBytes(t, new Uint8Array(out.buffer));
        return out;
      }
      const raw = new Uint8Array(t.end - t.begin);
      readBytes(t, raw);
      decodeInto(t.dtype, raw, out);
      return out;
    },
    readInt32(name) {
      const t = info(name);
      const raw = new Uint8Array(t.end - t.begin);
      readBytes(t, raw);
      if (t.dtype === 'I32') return new Int32Array(raw.buffer);
      if (t.dtype === 'I64') {
        const src = new BigInt64Array(raw.buffer);
        return Int32Array.from(src, (x) => Number(x));
      }
      throw new UserError(`${t.file}: tensor "${name}" is ${t.dtype}, expected an integer tensor (I32 or I64)`);
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}

function decodeInto(dtype: Dtype, raw: Uint8Array, out: Float32Array): void {
  switch (dtype) {
    case 'F16': {
      const src = new Uint16Array(raw.buffer, raw.byteOffset, out.length);
      const table = f16Table();
      for (let i = 0; i < out.length; i++) out[i] = table[src[i]];
      return;
    }
    case 'BF16': {
      const src = new Uint16Array(raw.buffer, raw.byteOffset, out.length);
      const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = 0; i < out.length; i++) bits[i] = src[i] << 16;
      return;
    }
    case 'F64': {
      const src = new Float64Array(raw.buffer, raw.byteOffset, out.length);
      out.set(src);
      return;
    }
    default:
      out.set(new Float32Array(raw.buffer, raw.byteOffset, out.length));
  }
}

let F16_TABLE: Float32Array | undefined;
/** All 65536 half-precision values as float32 (subnormals, inf and NaN included). */
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (F16_TABLE = t);
}

/** float32 → bfloat16 bits, round to nearest even (NaN kept quiet), as torch does. */
export function toBF16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    if ((x & 0x7fffffff) > 0x7f800000) dst[i] = (x >>> 16) | 0x40;
    else dst[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

/** float32 → IEEE half bits, round to nearest even, overflow to inf, subnormals kept. */
export function toF16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const e = (x >>> 23) & 0xff;
    let m = x & 0x7fffff;
    if (e === 0xff) { dst[i] = sign | 0x7c00 | (m ? 0x200 : 0); continue; }
    const he = e - 127 + 15;
    if (he >= 31) { dst[i] = sign | 0x7c00; continue; }
    if (he <= 0) {
      if (he < -10) { dst[i] = sign; continue; }
      m |= 0x800000; // implicit bit
      const shift = 14 - he;
      let hm = m >>> shift;
      const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
      if (rem > half || (rem === half && hm & 1)) hm++;
      dst[i] = sign | hm;
      continue;
    }
    let h = (he << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct
    dst[i] = sign | h;
  }
}

export interface TensorToWrite {
  /** Stored dtype; float32 data are converted on write. */
  dtype: 'F32' | 'F16' | 'BF16' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * Write a safetensors file atomically (temp file, fsync, rename, fsync dir), converting and
 * writing one tensor at a time. Tensors keep the map's order. `metadata` gets format "pt"
 * unless given: transformers refuses files without it.
 */
export function writeSafetensors(file: string, tensors: Map<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let off = 0;
  for (const [name, t] of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new Error(`writeSafetensors: "${name}" has ${t.data.length} values for shape [${t.shape}]`);
    if ((t.dtype === 'I32') !== (t.data instanceof Int32Array)) throw new Error(`writeSafetensors: "${name}" dtype ${t.dtype} does not match its data array`);
    const bytes = numel * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let hjson = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (hjson.length % 8)) % 8; // keeps tensor data 8-byte aligned
  if (pad) hjson = Buffer.concat([hjson, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hjson.length));

  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, len);
    writeAll(fd, hjson);
    for (const t of tensors.values()) writeTensor(fd, t);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
  fsyncDirSync(path.dirname(file));
}

const WRITE_CHUNK = 1 << 22; // values converted per slice: bounds the extra memory of f16/bf16

function writeTensor(fd: number, t: TensorToWrite): void {
  const d = t.data;
  if (t.dtype === 'F32' || t.dtype === 'I32') {
    for (let i = 0; i < d.length; i += WRITE_CHUNK) {
      const s = d.subarray(i, Math.min(d.length, i + WRITE_CHUNK));
      writeAll(fd, new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
    }
    return;
  }
  const buf = new Uint16Array(Math.min(WRITE_CHUNK, d.length));
  for (let i = 0; i < d.length; i += WRITE_CHUNK) {
    const s = (d as Float32Array).subarray(i, Math.min(d.length, i + WRITE_CHUNK));
    const o = buf.subarray(0, s.length);
    (t.dtype === 'BF16' ? toBF16 : toF16)(s, o);
    writeAll(fd, new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let done = 0; done < b.length; ) done += writeSync(fd, b, done, b.length - done);
}
