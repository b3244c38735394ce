/**
 * What a selection leaves behind: `selection.json` (how it was chosen, and the corpus it indexes)
 * beside `ids.txt` (the chosen document ids). Training packs those ids from the corpus's token
 * cache, so no text is copied; only TACP, whose corpus is the task text, writes shards (with the
 * data stage's writer and manifest format) for the same path to read.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Doc } from '../data/doc.js';
import { CORPUS_FORMAT, CORPUS_VERSION, MANIFEST, ShardWriter, type CorpusManifest, type SourceSummary } from '../data/shards.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256FileAsync } from '../util/hash.js';

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

/** `<run_dir>/selection/selection.json`: written last, so it names only a complete selection. */
export interface SelectionRecord {
  format: 'cpt-selection';
  version: 1;
  /** Identity of the inputs and settings; an up-to-date selection is reused. */
  fingerprint: string;
  created: string;
  /** The prepared corpus the ids index (TACP: its task-text corpus), tokenized once in its token cache. */
  corpus_dir: string;
  /** The chosen ids, one per line, in selection order. */
  ids_file: string;
  /** sha256 of ids_file: a selection whose ids file was edited or damaged is not reused. */
  ids_sha256: string;
  selection: SelectionInfo;
}

export const SELECTION_FILE = 'selection.json';

export async function writeSelectionRecord(dir: string, rec: Omit<SelectionRecord, 'format' | 'version' | 'created' | 'ids_sha256'>): Promise<SelectionRecord> {
  const ids_sha256 = await idsSha256(dir, rec.ids_file);
  const out: SelectionRecord = { format: 'cpt-selection', version: 1, created: new Date().toISOString(), ...rec, ids_sha256 };
  await writeFileAtomic(path.join(dir, SELECTION_FILE), JSON.stringify(out, null, 2) + '\n');
  return out;
}

export async function idsSha256(dir: string, idsFile: string): Promise<string> {
  return sha256FileAsync(path.join(dir, idsFile));
}

/** The selection record in `dir` (<run_dir>/selection), or null when there is none (or an old one). */
export async function readSelectionRecord(dir: string): Promise<SelectionRecord | null> {
  try {
    const r = JSON.parse(await fs.readFile(path.join(dir, SELECTION_FILE), 'utf8')) as SelectionRecord;
    return r.format === 'cpt-selection' ? r : null;
  } catch {
    return null;
  }
}

/** TACP's corpus: streams documents into shards of about `shardMb`, then writes manifest.json last. */
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

  async finish(fingerprint: string): Promise<CorpusManifest> {
    await this.shardWriter.closeShard();
    const sources = [...this.sources.values()].sort((a, b) => a.name.localeCompare(b.name));
    const manifest: CorpusManifest = {
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
    };
    await writeFileAtomic(path.join(this.dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  }
}
