/**
 * Spreads text scoring over worker threads (one per core by default): POS tagging and hashing are
 * CPU-bound and per-document independent, so a shard splits into equal-character chunks.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { TextScorer, type TextScoreSetup, type TextScores } from './text-score.js';

/** Below this many characters a batch is scored on the calling thread (messaging would dominate). */
const MIN_PARALLEL_CHARS = 100_000;

interface Job {
  resolve: (r: TextScores) => void;
  reject: (e: Error) => void;
}

export class TextScorerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Job>();
  private nextId = 0;
  private local: TextScorer | null = null;
  /** Set when a worker died: every later call fails with it instead of waiting forever. */
  private failure: Error | null = null;

  /** threads: worker count (default: cores); 0 = score on the calling thread only. */
  constructor(
    private readonly setup: TextScoreSetup,
    threads = os.availableParallelism(),
  ) {
    const isTs = import.meta.url.endsWith('.ts');
    const entry = new URL(isTs ? './text-worker.ts' : './text-worker.js', import.meta.url);
    for (let i = 0; i < threads; i++) {
      // From source, a small .mjs boot registers tsx in the worker, then imports the .ts entry.
      const w = isTs
        ? new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: { entry: entry.href, setup } })
        : new Worker(entry, { workerData: { setup } });
      w.on('message', (m: { id: number; error?: string } & TextScores) => {
        const job = this.pending.get(m.id);
        if (!job) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) job.reject(new Error(`text scorer worker: ${m.error}`));
        else job.resolve({ similarity: m.similarity, entropy: m.entropy, words: m.words });
      });
      const fail = (e: Error): void => {
        this.failure ??= e;
        for (const job of this.pending.values()) job.reject(e);
        this.pending.clear();
      };
      w.on('error', (e) => fail(new Error(`text scorer worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        if (!this.closing) fail(new Error(`text scorer worker exited (code ${code})`));
      });
      this.workers.push(w);
    }
  }

  async score(texts: string[]): Promise<TextScores> {
    let chars = 0;
    for (const t of texts) chars += t.length;
    if (this.workers.length === 0 || chars < MIN_PARALLEL_CHARS || texts.length < 2) {
      this.local ??= new TextScorer(this.setup);
      return this.local.score(texts);
    }
    // Contiguous chunks of about equal characters, a few per worker so a slow chunk balances out.
    const nChunks = Math.min(texts.length, this.workers.length * 2);
    const per = chars / nChunks;
    const parts: Promise<TextScores>[] = [];
    let start = 0;
    for (let c = 0; c < nChunks && start < texts.length; c++) {
      let end = start;
      let sum = 0;
      const last = c === nChunks - 1;
      while (end < texts.length && (last || sum < per)) sum += texts[end++].length;
      parts.push(this.send(this.workers[c % this.workers.length], texts.slice(start, end)));
      start = end;
    }
    const rs = await Promise.all(parts);
    const similarity = new Float64Array(texts.length);
    const entropy = new Float64Array(texts.length);
    let off = 0;
    let words = 0;
    for (const r of rs) {
      similarity.set(r.similarity, off);
      entropy.set(r.entropy, off);
      off += r.similarity.length;
      words += r.words;
    }
    return { similarity, entropy, words };
  }

  private send(w: Worker, texts: string[]): Promise<TextScores> {
    const id = this.nextId++;
    return new Promise<TextScores>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, texts });
    });
  }

  private closing = false;

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
