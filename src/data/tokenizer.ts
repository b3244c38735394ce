/**
 * GPT-NeoX tokenizer from a local tokenizer.json: our byte-level BPE (bpe.ts), with
 * worker threads for batches so both cores are used.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { UserError } from '../util/errors.js';
import { BytePairEncoder, type TokenizerJson } from './bpe.js';

export interface Tokenizer {
  encode(text: string): Int32Array;
  /** Encodes many texts, in order; large batches are spread over worker threads. */
  encodeBatch(texts: string[]): Promise<Int32Array[]>;
  decode(ids: ArrayLike<number>): string;
  readonly eosId: number;
  readonly vocabSize: number;
  /** sha256 of the tokenizer.json bytes: keys token caches. */
  readonly hash: string;
  readonly path: string;
  /** Stops the worker threads (they are unref'd, so this is only needed to free them early). */
  close(): Promise<void>;
}

export interface TokenizerOptions {
  /** Threads for encodeBatch, this one included (default: cores, at most 8; 1 = this thread only). */
  threads?: number;
}

const EOS = '<|endoftext|>';

/** tsx's ESM register API, as a file URL a worker can import. */
function tsxEsmApi(): string {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return pathToFileURL(path.join(path.dirname(pkg), 'dist/esm/api/index.mjs')).href;
}
/** Batches smaller than this many characters are encoded on the calling thread. */
const MIN_PARALLEL_CHARS = 200_000;

export async function loadTokenizer(file: string, opts: TokenizerOptions = {}): Promise<Tokenizer> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    throw new UserError(`tokenizer ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let json: TokenizerJson;
  try {
    json = JSON.parse(bytes.toString('utf8')) as TokenizerJson;
  } catch (e) {
    throw new UserError(`tokenizer ${file}: not valid JSON (${(e as Error).message})`);
  }
  const bpe = new BytePairEncoder(json, file);
  const eosId = bpe.idOf(EOS);
  if (eosId === undefined) throw new UserError(`tokenizer ${file}: no ${EOS} token`);
  const hash = createHash('sha256').update(bytes).digest('hex');
  const threads = opts.threads ?? Math.min(8, os.availableParallelism());
  return new BpeTokenizer(bpe, file, hash, eosId, threads);
}

class BpeTokenizer implements Tokenizer {
  private pool: WorkerPool | null = null;
  constructor(
    private readonly bpe: BytePairEncoder,
    readonly path: string,
    readonly hash: string,
    readonly eosId: number,
    private readonly threads: number,
  ) {}
  get vocabSize(): number {
    return this.bpe.vocabSize;
  }
  encode(text: string): Int32Array {
    return this.bpe.encode(text);
  }
  decode(ids: ArrayLike<number>): string {
    return this.bpe.decode(ids);
  }
  async encodeBatch(texts: string[]): Promise<Int32Array[]> {
    let chars = 0;
    for (const t of texts) chars += t.length;
    if (this.threads < 2 || chars < MIN_PARALLEL_CHARS || texts.length < 2) return texts.map((t) => this.bpe.encode(t));
    // threads - 1 workers; this thread takes the last share instead of idling.
    this.pool ??= new WorkerPool(this.path, this.threads - 1);
    return this.pool.encode(texts, chars, (part) => part.map((t) => this.bpe.encode(t)));
  }
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }
}

interface Job {
  resolve: (v: Int32Array[]) => void;
  reject: (e: Error) => void;
}

/** A fixed set of workers, each holding its own BytePairEncoder (and word cache). */
class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Job>();
  private nextId = 0;

  constructor(file: string, n: number) {
    const url = new URL(import.meta.url.endsWith('.ts') ? './tokenizer-worker.ts' : './tokenizer-worker.js', import.meta.url);
    for (let i = 0; i < n; i++) {
      const w = url.pathname.endsWith('.ts')
        ? // Running from source (tsx, vitest): register tsx's loader in the worker, then load it.
          new Worker(
            `import(${JSON.stringify(tsxEsmApi())}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`,
            { eval: true, workerData: { file } },
          )
        : new Worker(url, { workerData: { file } });
      w.unref();
      w.on('message', (m: { id: number; ids?: Int32Array[]; error?: string }) => {
        const job = this.pending.get(m.id);
        if (!job) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) job.reject(new Error(m.error));
        else job.resolve(m.ids!);
      });
      w.on('error', (e) => {
        for (const job of this.pending.values()) job.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  /**
   * Splits texts into contiguous chunks of about equal characters: one per worker, and the last
   * one for `local` (the calling thread), run while the workers are busy.
   */
  async encode(texts: string[], chars: number, local: (texts: string[]) => Int32Array[]): Promise<Int32Array[]> {
    const per = chars / (this.workers.length + 1);
    const chunks: Promise<Int32Array[]>[] = [];
    let start = 0;
    for (let w = 0; w < this.workers.length && start < texts.length; w++) {
      let end = start;
      let c = 0;
      while (end < texts.length && c < per) c += texts[end++].length;
      chunks.push(this.send(this.workers[w], texts.slice(start, end)));
      start = end;
    }
    const mine = local(texts.slice(start));
    return [...(await Promise.all(chunks)).flat(), ...mine];
  }

  private send(w: Worker, texts: string[]): Promise<Int32Array[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ id, texts });
    }).finally(() => {
      if (![...this.pending.keys()].length) for (const x of this.workers) x.unref();
    }) as Promise<Int32Array[]>;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
