import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordBatch, RecordBatchFileWriter, Utf8, vectorFromArray } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { CORPUS_FORMAT, CORPUS_VERSION, readSpec, type CorpusManifest, type Doc } from '../../src/data/index.js';
import { FIN_SPECS, KIT } from './kit.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-mem-'));
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('readDocs memory', () => {
  it('streams ~400 MB of shards in a child with a 64 MB heap cap', async () => {
    // One ~4 MB record batch of real 10-K text, repeated: 4 shards × 25 batches ≈ 400 MB.
    const docs: Doc[] = [];
    for await (const d of readSpec(FIN_SPECS[1]).docs) docs.push(d);
    const batchDocs: Doc[] = [];
    let batchBytes = 0;
    for (const d of docs) {
      if (batchBytes > 4e6) break;
      batchDocs.push(d);
      batchBytes += Buffer.byteLength(d.text);
    }
    const col = (f: (d: Doc) => string) => vectorFromArray(batchDocs.map(f), new Utf8()).data[0];
    const rb = new RecordBatch({ id: col((d) => d.id), text: col((d) => d.text), source: col((d) => d.source) });
    const shards: CorpusManifest['shards'] = [];
    for (let s = 0; s < 4; s++) {
      const w = new RecordBatchFileWriter();
      for (let b = 0; b < 25; b++) w.write(rb);
      w.finish();
      const bytes = w.toUint8Array(true);
      const file = `shard-${String(s).padStart(5, '0')}.arrow`;
      await fs.writeFile(path.join(tmp, file), bytes);
      shards.push({ file, docs: 25 * batchDocs.length, text_bytes: 25 * batchBytes, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
    const total = shards.reduce((a, s) => a + s.bytes, 0);
    expect(total).toBeGreaterThan(380e6);
    const manifest: CorpusManifest = {
      format: CORPUS_FORMAT,
      version: CORPUS_VERSION,
      fingerprint: 'test',
      created: new Date().toISOString(),
      shard_mb: 100,
      sources: [],
      shards,
      totals: { docs: 100 * batchDocs.length, text_bytes: 100 * batchBytes, shard_bytes: total, input_bytes: 0 },
      skipped: {},
    };
    await fs.writeFile(path.join(tmp, 'manifest.json'), JSON.stringify(manifest));

    const script = fileURLToPath(new URL('./fixtures/count-docs.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', script, tmp], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { docs: number; bytes: number; maxRss: number };
    expect(out.docs).toBe(100 * batchDocs.length);
    expect(out.bytes).toBe(100 * batchBytes);
    // Far below the corpus size: one record batch at a time (plus Node + tsx themselves).
    console.log(`child peak RSS ${(out.maxRss / 1e6).toFixed(0)} MB for ${(total / 1e6).toFixed(0)} MB of shards`);
    expect(out.maxRss).toBeLessThan(250e6);
  }, 90_000);

  it('reads a ~200 MB plain-text file in a child with a 64 MB heap cap', async () => {
    // Jane Austen's Emma 230 times: blank-line paragraphs, far more text than the heap could hold at once.
    const emma = await fs.readFile(path.join(KIT, 'corpus/general/gutenberg_nltk/austen-emma.txt'));
    const file = path.join(tmp, 'big.txt');
    const h = await fs.open(file, 'w');
    for (let i = 0; i < 230; i++) await h.write(Buffer.concat([emma, Buffer.from('\n\n')]));
    await h.close();
    const script = fileURLToPath(new URL('./fixtures/count-text.ts', import.meta.url));
    const one = { docs: 0, bytes: 0 };
    for await (const d of readSpec({ name: 't', path: path.join(KIT, 'corpus/general/gutenberg_nltk/austen-emma.txt'), format: 'text', fields: [], encoding: 'utf-8', skip_bad: false }).docs) {
      one.docs++;
      one.bytes += Buffer.byteLength(d.text);
    }
    const r = spawnSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', script, file], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { docs: number; bytes: number; maxRss: number };
    expect(out.docs).toBe(230 * one.docs);
    expect(out.bytes).toBe(230 * one.bytes);
    console.log(`child peak RSS ${(out.maxRss / 1e6).toFixed(0)} MB for ${(230 * emma.length / 1e6).toFixed(0)} MB of text`);
    expect(out.maxRss).toBeLessThan(250e6);
  }, 150_000);
});
