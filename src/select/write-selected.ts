/**
 * Writes the chosen documents as corpus shards (same Arrow schema {id, text, source} and
 * manifest format as `cpt prepare`), so the data stage's readDocs / tokenize / pack read them as is.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Doc } from '../data/doc.js';
import { CORPUS_FORMAT, CORPUS_VERSION, MANIFEST, ShardWriter, type CorpusManifest, type SourceSummary } from '../data/shards.js';
import { writeFileAtomic } from '../util/atomic.js';

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

/** Streams documents into shards of about `shardMb` (the data stage's writer), then writes manifest.json last. */
export class SelectedWriter {
  private readonly shardWriter: ShardWriter;
  private readonly sources = new Map<string, SourceSummary>();
  private docs = 0;

  constructor(
    private readonly dir: string,
    private readonly shardMb: number,
  ) {
    this.shardWriter = new ShardWriter(dir, shardMb * 1024 * 1024);
  }

  static async open(dir: string, shardMb: number): Promise<SelectedWriter> {
    // The manifest goes last, so a crash mid-write never leaves a manifest describing missing shards.
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    return new SelectedWriter(dir, shardMb);
  }

  async add(doc: Doc): Promise<void> {
    this.docs++;
    let s = this.sources.get(doc.source);
    if (!s) {
      s = { name: doc.source, path: '', format: 'selection', files: 0, input_bytes: 0, docs: 0, text_bytes: 0, skipped: {} };
      this.sources.set(doc.source, s);
    }
    s.docs++;
    s.text_bytes += Buffer.byteLength(doc.text);
    await this.shardWriter.add(doc);
  }

  async finish(fingerprint: string, selection: SelectionInfo): Promise<SelectionManifest> {
    await this.shardWriter.closeShard();
    const sources = [...this.sources.values()].sort((a, b) => a.name.localeCompare(b.name));
    const manifest: SelectionManifest = {
      format: CORPUS_FORMAT,
      version: CORPUS_VERSION,
      fingerprint,
      created: new Date().toISOString(),
      shard_mb: this.shardMb,
      sources,
      shards: this.shardWriter.shards,
      totals: {
        docs: this.docs,
        text_bytes: sources.reduce((a, s) => a + s.text_bytes, 0),
        shard_bytes: this.shardWriter.shards.reduce((a, s) => a + s.bytes, 0),
        input_bytes: 0,
      },
      skipped: {},
      selection,
    };
    await writeFileAtomic(path.join(this.dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  }
}
