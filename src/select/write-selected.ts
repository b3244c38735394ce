/**
 * Writes the chosen documents as corpus shards (same Arrow schema {id, text, source} and
 * manifest format as `cpt prepare`), so the data stage's readDocs / tokenize / pack read them as is.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RecordBatch, RecordBatchFileWriter, Utf8, vectorFromArray } from 'apache-arrow';
import type { Doc } from '../data/doc.js';
import { CORPUS_FORMAT, CORPUS_VERSION, MANIFEST, type CorpusManifest, type ShardInfo, type SourceSummary } from '../data/shards.js';
import { writeFileAtomic } from '../util/atomic.js';

/** Record batches are cut at about this many text bytes (as `cpt prepare` does). */
const BATCH_BYTES = 4 << 20;

export interface SelectionInfo {
  method: string;
  sampling: string;
  metrics: string[];
  /** Budget as a fraction of the non-held-out corpus tokens, and in tokens. */
  budget: number;
  budget_tokens: number;
  corpus_tokens: number;
  corpus_docs: number;
  selected_tokens: number;
  selected_docs: number;
  seed: number;
  temperature: number;
  /** Identity of the score table the selection was drawn from (absent for TACP). */
  scores_key?: string;
  /** The prepared corpus it was drawn from. */
  corpus_dir?: string;
  corpus_fingerprint?: string;
  fin_test_fraction: number;
}

/** The selected corpus' manifest: a corpus manifest (readable by readDocs) plus how it was chosen. */
export interface SelectionManifest extends CorpusManifest {
  selection: SelectionInfo;
}

/** Streams documents into shards of about `shardMb`, then writes manifest.json last. */
export class SelectedWriter {
  private readonly shards: ShardInfo[] = [];
  private readonly sources = new Map<string, SourceSummary>();
  private batch: Doc[] = [];
  private batchBytes = 0;
  private writer: RecordBatchFileWriter | null = null;
  private shardDocs = 0;
  private shardTextBytes = 0;
  private docs = 0;

  constructor(
    private readonly dir: string,
    private readonly shardMb: number,
  ) {}

  static async open(dir: string, shardMb: number): Promise<SelectedWriter> {
    // The manifest goes first so a crash mid-write never leaves a manifest describing missing shards.
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    return new SelectedWriter(dir, shardMb);
  }

  async add(doc: Doc): Promise<void> {
    const bytes = Buffer.byteLength(doc.text);
    this.batch.push(doc);
    this.batchBytes += bytes;
    this.docs++;
    let s = this.sources.get(doc.source);
    if (!s) {
      s = { name: doc.source, path: '', format: 'selection', files: 0, input_bytes: 0, docs: 0, text_bytes: 0, skipped: {} };
      this.sources.set(doc.source, s);
    }
    s.docs++;
    s.text_bytes += bytes;
    if (this.batchBytes >= BATCH_BYTES) this.flushBatch();
    if (this.shardTextBytes + this.batchBytes >= this.shardMb * 1024 * 1024) await this.closeShard();
  }

  private flushBatch(): void {
    if (!this.batch.length) return;
    const col = (f: (d: Doc) => string) => vectorFromArray(this.batch.map(f), new Utf8()).data[0];
    const rb = new RecordBatch({ id: col((d) => d.id), text: col((d) => d.text), source: col((d) => d.source) });
    this.writer ??= new RecordBatchFileWriter();
    this.writer.write(rb);
    this.shardDocs += this.batch.length;
    this.shardTextBytes += this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
  }

  private async closeShard(): Promise<void> {
    this.flushBatch();
    if (!this.writer) return;
    this.writer.finish();
    const bytes = this.writer.toUint8Array(true);
    this.writer = null;
    const file = `shard-${String(this.shards.length).padStart(5, '0')}.arrow`;
    await writeFileAtomic(path.join(this.dir, file), bytes);
    this.shards.push({ file, docs: this.shardDocs, text_bytes: this.shardTextBytes, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    this.shardDocs = 0;
    this.shardTextBytes = 0;
  }

  async finish(fingerprint: string, selection: SelectionInfo): Promise<SelectionManifest> {
    await this.closeShard();
    const sources = [...this.sources.values()].sort((a, b) => a.name.localeCompare(b.name));
    const manifest: SelectionManifest = {
      format: CORPUS_FORMAT,
      version: CORPUS_VERSION,
      fingerprint,
      created: new Date().toISOString(),
      shard_mb: this.shardMb,
      sources,
      shards: this.shards,
      totals: {
        docs: this.docs,
        text_bytes: sources.reduce((a, s) => a + s.text_bytes, 0),
        shard_bytes: this.shards.reduce((a, s) => a + s.bytes, 0),
        input_bytes: 0,
      },
      skipped: {},
      selection,
    };
    await writeFileAtomic(path.join(this.dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  }
}
