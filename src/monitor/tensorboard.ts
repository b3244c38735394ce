/**
 * The monitor's scalars as a TensorBoard event file beside metrics.jsonl, so a run is watched with
 * `tensorboard --logdir RUN_DIR/tensorboard` as LitGPT, GPT-NeoX and the HF Trainer runs are.
 * Written by hand: the format is small and documented. A file is TFRecords (tensorboard
 * summary/writer/record_writer.py: length uint64 LE, masked CRC-32C of the length, data, masked
 * CRC-32C of the data), each an `Event` protobuf (tensorflow/core/util/event.proto: wall_time = 1
 * double, step = 2 int64, file_version = 3 string, summary = 5) whose `Summary` holds
 * `Value { tag = 1 string, simple_value = 2 float }`.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomicSync } from '../util/atomic.js';
import type { MetricRecord } from './metrics.js';

const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC32C[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const masked = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

const lengthDelimited = (field: number, data: Uint8Array) => Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(data.length)]), data]);

function scalarValue(tag: string, v: number): Buffer {
  const f = Buffer.alloc(5);
  f[0] = (2 << 3) | 5; // simple_value, fixed32
  f.writeFloatLE(v, 1);
  return lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(tag, 'utf8')), f]));
}

/** One Event: `scalars` at `step`, or the file_version event that opens a file. */
export function encodeEvent(wallTime: number, step: number, scalars: [string, number][] | { fileVersion: string }): Buffer {
  const head = Buffer.alloc(9);
  head[0] = (1 << 3) | 1; // wall_time, fixed64
  head.writeDoubleLE(wallTime, 1);
  const stepField = Buffer.from([2 << 3, ...varint(step)]);
  const body = 'fileVersion' in scalars ? lengthDelimited(3, Buffer.from(scalars.fileVersion)) : lengthDelimited(5, Buffer.concat(scalars.map(([t, v]) => scalarValue(t, v))));
  return Buffer.concat([head, stepField, body]);
}

export function tfRecord(data: Uint8Array): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const crcs = Buffer.alloc(8);
  crcs.writeUInt32LE(masked(crc32c(len)), 0);
  crcs.writeUInt32LE(masked(crc32c(data)), 4);
  return Buffer.concat([len, crcs.subarray(0, 4), data, crcs.subarray(4)]);
}

/** The scalars of a metrics record, under TensorBoard tags. */
function scalarsOf(r: MetricRecord): [string, number][] {
  const s: [string, number | null | undefined][] = [
    ['train/loss', r.loss], ['train/lr', r.lr], ['train/grad_norm', r.grad_norm], ['train/tokens_per_s', r.tok_s], ['train/tokens', r.tokens],
    ['eval/fin_test_loss', r.fin_test], ['eval/pile_test_loss', r.pile_test], ['eval/task_test_loss', r.task_test],
  ];
  return s.filter((x): x is [string, number] => typeof x[1] === 'number' && Number.isFinite(x[1]));
}

/** `<dir>/events.out.tfevents.<time>.<host>.cpt`: one file per run, appended per record, rewritten on resume. */
export class TensorBoardLog {
  readonly file: string;

  constructor(dir: string, private readonly start = Date.now() / 1000) {
    mkdirSync(dir, { recursive: true });
    const have = readdirSync(dir).find((f) => /^events\.out\.tfevents\..*\.cpt$/.test(f));
    this.file = path.join(dir, have ?? `events.out.tfevents.${Math.floor(start)}.${os.hostname()}.cpt`);
    if (!existsSync(this.file)) this.rewrite([]);
  }

  append(r: MetricRecord): void {
    const s = scalarsOf(r);
    if (s.length) appendFileSync(this.file, tfRecord(encodeEvent(this.start + r.time, r.step, s)));
  }

  /** The file holding exactly `records` (a resume drops the steps after its checkpoint). */
  rewrite(records: MetricRecord[]): void {
    const parts = [tfRecord(encodeEvent(this.start, 0, { fileVersion: 'brain.Event:2' }))];
    for (const r of records) {
      const s = scalarsOf(r);
      if (s.length) parts.push(tfRecord(encodeEvent(this.start + r.time, r.step, s)));
    }
    writeFileAtomicSync(this.file, Buffer.concat(parts));
  }
}
