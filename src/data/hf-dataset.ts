/**
 * Packed rows as a Hugging Face `datasets` directory, the layout `Dataset.save_to_disk` writes and
 * `datasets.load_from_disk` reads: Arrow IPC stream shards `data-0000i-of-0000n.arrow` with one
 * column `input_ids` (fixed-size list of seq_len int32), `dataset_info.json` and `state.json`.
 * Shards stay under `maxShardBytes` (datasets' own default, 500 MB), so memory stays bounded.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Field, FixedSizeList, Int32, RecordBatch, RecordBatchStreamWriter, Schema, Struct, makeData } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic.js';
import type { PackedDataset } from './pack.js';

const ROWS_PER_BATCH = 1024;

/** The `datasets` features of the column, as dataset_info.json and the schema metadata state them. */
const features = (seqLen: number) => ({ input_ids: { feature: { dtype: 'int32', _type: 'Value' }, length: seqLen, _type: 'List' } });

/** Writes the first `count` rows of `rows` into `dir`; returns every file written with its sha256. */
export async function writeHfRows(dir: string, rows: PackedDataset, count: number, maxShardBytes = 500e6): Promise<Record<string, string>> {
  mkdirSync(dir, { recursive: true });
  const seq = rows.seqLen;
  const rowBytes = seq * 4;
  const perShard = Math.max(1, Math.floor(maxShardBytes / rowBytes));
  const shards = Math.max(1, Math.ceil(count / perShard));
  const item = new Field('item', new Int32(), true);
  const type = new FixedSizeList(seq, item);
  const schema = new Schema([new Field('input_ids', type, true)], new Map([['huggingface', JSON.stringify({ info: { features: features(seq) } })]]));
  const sums: Record<string, string> = {};
  const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
  for (let s = 0; s < shards; s++) {
    const file = `data-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.arrow`;
    const w = new RecordBatchStreamWriter();
    w.reset(undefined, schema);
    const end = Math.min(count, (s + 1) * perShard);
    for (let start = s * perShard; start < end; start += ROWS_PER_BATCH) {
      const n = Math.min(ROWS_PER_BATCH, end - start);
      const child = makeData({ type: new Int32(), data: rows.read(start, n) });
      const list = makeData({ type, length: n, nullCount: 0, child });
      w.write(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children: [list] })));
    }
    w.finish();
    const bytes = w.toUint8Array(true);
    sums[file] = sha(bytes);
    await writeFileAtomic(path.join(dir, file), bytes);
  }
  const files = Object.keys(sums);
  const info = JSON.stringify({ citation: '', description: '', features: features(seq), homepage: '', license: '' }, null, 2) + '\n';
  const state = JSON.stringify({
    _data_files: files.map((filename) => ({ filename })),
    _fingerprint: sha(files.map((f) => sums[f]).join('')).slice(0, 16),
    _format_columns: null,
    _format_kwargs: {},
    _format_type: null,
    _output_all_columns: false,
    _split: null,
  }, null, 2) + '\n';
  await writeFileAtomic(path.join(dir, 'dataset_info.json'), info);
  await writeFileAtomic(path.join(dir, 'state.json'), state);
  return { ...sums, 'dataset_info.json': sha(info), 'state.json': sha(state) };
}
