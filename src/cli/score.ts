/**
 * `cpt score`: per-line loss and perplexity of a model on a JSONL file of texts (tokenized with
 * the model's tokenizer) or of token ids (for models with their own vocabulary).
 */
import type { Command } from 'commander';
import { createReadStream, existsSync, openSync, writeSync, fsyncSync, closeSync, renameSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { dataDir } from '../util/paths.js';
import { Progress } from '../util/progress.js';
import { fsyncDir } from '../util/atomic.js';
import { loadModel } from '../model/load.js';
import { rowLosses } from '../monitor/heldout.js';
import { createEngine, defaultEngineKind, ENGINE_LIST, parseEngineKind, PRECISIONS, type EngineKind } from '../engine/index.js';
import type { Precision } from '../engine/engine.js';

export interface ScoreOptions {
  model: string;
  /** JSONL with a text field (exactly one of text / ids). */
  text?: string;
  field?: string;
  /** JSONL of {"ids": [...]}. */
  ids?: string;
  /** Default: the registry's pick (defaultEngineKind: cuda on a GPU, else native when built, else tfjs). */
  engine?: EngineKind;
  tokenizer?: string;
  /** Tokens kept per line (longer lines are truncated); default the model's context length. */
  maxTokens?: number;
  batch?: number;
  /** Output file (written atomically); default stdout. */
  out?: string;
  threads?: number;
  /** Matmul precision; default the engine's own (the registry's defaultPrecision). */
  precision?: Precision;
}

export interface ScoreRecord {
  /** 1-based line number in the input file. */
  line: number;
  /** The input line's `id`, when it has one (to join scores back to a corpus without relying on line order). */
  id?: string | number;
  /** Tokens scored (after truncation). */
  tokens: number;
  /** Next-token predictions the loss is the mean of (tokens - 1): its weight in an overall mean. */
  predictions: number;
  /** Mean next-token cross-entropy in nats; null with fewer than 2 tokens. */
  loss: number | null;
  ppl: number | null;
  truncated?: true;
  /** The loss came out NaN or infinite (loss and ppl are then null): broken weights or input. */
  nonfinite?: true;
}

interface Line { line: number; id?: string | number; value: string | number[] }

async function* readLines(file: string, field: string | undefined): AsyncGenerator<Line> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const raw of rl) {
    n++;
    if (!raw.trim()) continue;
    let o: unknown;
    try {
      o = JSON.parse(raw);
    } catch (e) {
      throw new UserError(`${file}:${n}: not valid JSON (${(e as Error).message})`);
    }
    const rec = (typeof o === 'object' && o !== null ? o : {}) as Record<string, unknown>;
    const id = typeof rec.id === 'string' || typeof rec.id === 'number' ? rec.id : undefined;
    if (field !== undefined) {
      if (typeof rec[field] !== 'string') throw new UserError(`${file}:${n}: expected a string field "${field}" (choose another with --field)`);
      yield { line: n, id, value: rec[field] as string };
    } else {
      const ids = rec.ids;
      if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x))) throw new UserError(`${file}:${n}: expected {"ids": [integer, ...]}`);
      yield { line: n, id, value: ids as number[] };
    }
  }
}

async function countLines(file: string): Promise<number> {
  let n = 0, last = 10;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) n++;
    if (chunk.length) last = chunk[chunk.length - 1];
  }
  return last === 10 ? n : n + 1;
}

async function pickEngine(kind: EngineKind | undefined): Promise<EngineKind> {
  if (kind) return kind;
  const k = await defaultEngineKind();
  if (k === 'tfjs') process.stderr.write(`score: native engine unavailable; using ${k}\n`);
  return k;
}

/** Writes lines to stdout, or to a temp file renamed over `file` at the end. */
function openSink(file: string | undefined): { write(s: string): void; commit(): Promise<void>; abort(): void } {
  if (!file) return { write: (s) => void process.stdout.write(s), commit: async () => {}, abort: () => {} };
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  let closed = false;
  return {
    write: (s) => void writeSync(fd, s),
    async commit() {
      fsyncSync(fd);
      closeSync(fd);
      closed = true;
      renameSync(tmp, file);
      await fsyncDir(path.dirname(path.resolve(file)));
    },
    abort() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}

export async function runScore(o: ScoreOptions): Promise<{ lines: number; tokens: number; meanLoss: number | null; nonfinite: number }> {
  if ((o.text === undefined) === (o.ids === undefined)) throw new UserError('score: give exactly one of --text FILE.jsonl or --ids FILE.jsonl');
  const input = (o.text ?? o.ids)!;
  if (!existsSync(input)) throw new UserError(`${input}: no such file`);
  const batch = o.batch ?? 8;
  const model = await loadModel(o.model);
  const cfg = model.config;
  const maxTokens = o.maxTokens ?? cfg.max_position_embeddings;
  if (maxTokens < 2) throw new UserError(`--max-tokens: ${maxTokens} is too small (at least 2 tokens are needed for one prediction)`);
  if (maxTokens > cfg.max_position_embeddings) {
    throw new UserError(`--max-tokens: ${maxTokens} exceeds the model's context (max_position_embeddings ${cfg.max_position_embeddings})`);
  }

  let encode: ((texts: string[]) => Promise<Int32Array[]>) | undefined;
  let closeTokenizer = async () => {};
  if (o.text !== undefined) {
    const tokPath = o.tokenizer ?? [path.join(o.model, 'tokenizer.json'), path.join(dataDir(), 'tokenizer', '20B_tokenizer.json')].find((p) => existsSync(p));
    if (!tokPath) throw new UserError(`score: no tokenizer: ${o.model} has no tokenizer.json and the data kit has none; pass --tokenizer PATH`);
    const { loadTokenizer } = await import('../data/tokenizer.js');
    const tok = await loadTokenizer(tokPath);
    if (tok.vocabSize > cfg.vocab_size) {
      throw new UserError(`tokenizer ${tokPath} has ${tok.vocabSize} tokens but the model's vocab_size is ${cfg.vocab_size}; pass the model's own --tokenizer`);
    }
    encode = (texts) => tok.encodeBatch(texts);
    closeTokenizer = () => tok.close();
  }

  const engine = await createEngine(await pickEngine(o.engine), cfg, { threads: o.threads, precision: o.precision });
  engine.loadWeights(model.weights);
  model.weights.clear(); // the engine holds its own copy
  const sink = openSink(o.out);
  const progress = new Progress('score', await countLines(input), 'lines');
  let lines = 0, tokens = 0, lossSum = 0, predictions = 0, scored = 0, nonfinite = 0;
  const flush = async (pending: Line[]): Promise<void> => {
    if (!pending.length) return;
    const rows = encode
      ? await encode(pending.map((l) => l.value as string))
      : pending.map((l) => {
          const ids = l.value as number[];
          const bad = ids.findIndex((x) => x < 0 || x >= cfg.vocab_size);
          if (bad >= 0) throw new UserError(`${input}:${l.line}: ids[${bad}] = ${ids[bad]} is outside the model's vocabulary [0, ${cfg.vocab_size})`);
          return Int32Array.from(ids);
        });
    const kept = rows.map((r) => (r.length > maxTokens ? r.subarray(0, maxTokens) : r));
    const losses = rowLosses(engine, kept, cfg.eos_token_id);
    pending.forEach((l, i) => {
      const raw = losses[i];
      const bad = raw !== null && !Number.isFinite(raw);
      const loss = bad ? null : raw;
      const rec: ScoreRecord = { line: l.line, ...(l.id !== undefined ? { id: l.id } : {}), tokens: kept[i].length, predictions: Math.max(0, kept[i].length - 1), loss, ppl: loss === null ? null : Math.exp(loss) };
      if (rows[i].length > maxTokens) rec.truncated = true;
      if (raw !== null) scored++;
      if (bad) rec.nonfinite = true, nonfinite++;
      sink.write(JSON.stringify(rec) + '\n');
      lines++;
      tokens += kept[i].length;
      if (loss !== null) { lossSum += loss * (kept[i].length - 1); predictions += kept[i].length - 1; }
    });
    progress.add(pending.length, `${tokens} tokens`);
  };
  try {
    let pending: Line[] = [];
    for await (const l of readLines(input, o.text !== undefined ? (o.field ?? 'text') : undefined)) {
      pending.push(l);
      if (pending.length >= batch) { await flush(pending); pending = []; }
    }
    await flush(pending);
    await sink.commit();
  } catch (e) {
    sink.abort();
    throw e;
  } finally {
    engine.dispose();
    await closeTokenizer();
  }
  const meanLoss = predictions ? lossSum / predictions : null;
  progress.finish(meanLoss === null ? '' : `loss ${meanLoss.toFixed(4)} ppl ${Math.exp(meanLoss).toFixed(2)} (mean over all ${predictions} predictions: each line weighted by its predictions)`);
  if (nonfinite && nonfinite === scored) throw new UserError(`${o.model}: every one of the ${scored} scored lines has a non-finite loss (NaN or infinite): the model's weights are probably not finite`);
  if (nonfinite) process.stderr.write(`score: warning: ${nonfinite} of ${scored} scored lines have a non-finite loss (marked "nonfinite": true)\n`);
  return { lines, tokens, meanLoss, nonfinite };
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag}: "${v}" should be a whole number ≥ 1`);
  return n;
}

export function register(program: Command): void {
  program
    .command('score')
    .description('per-line loss and perplexity of a model on JSONL text (or token ids), as JSONL {line, id, tokens, predictions, loss, ppl}')
    .requiredOption('--model <dir>', 'Hugging Face GPT-NeoX directory (or a Pythia preset name)')
    .option('--text <file>', 'JSONL file with one text per line')
    .option('--field <name>', 'the text field of --text lines', 'text')
    .option('--ids <file>', 'JSONL file of {"ids": [...]} lines (models with their own vocabulary)')
    .option('--engine <kind>', `${ENGINE_LIST} (default: cuda on a GPU, else native when built, else tfjs)`)
    .option('--tokenizer <path>', "tokenizer.json (default: the model's, else the data kit's 20B tokenizer)")
    .option('--max-tokens <n>', "tokens kept per line (default: the model's context length)")
    .option('--batch <n>', 'lines per forward pass', '8')
    .option('--threads <n>', 'native engine threads')
    .option('--precision <p>', `matmul precision, ${PRECISIONS.join(' or ')} (default: the engine's: bf16 on cuda, else fp32)`)
    .option('--out <file>', 'write JSONL here (atomically) instead of stdout')
    .action(async (o: Record<string, string | undefined>) => {
      await runScore({
        model: o.model!,
        text: o.text,
        field: o.field,
        ids: o.ids,
        engine: o.engine === undefined ? undefined : parseEngineKind(o.engine),
        tokenizer: o.tokenizer,
        maxTokens: positiveInt('--max-tokens', o.maxTokens),
        batch: positiveInt('--batch', o.batch),
        threads: positiveInt('--threads', o.threads),
        precision: parsePrecision(o.precision),
        out: o.out,
      });
    });
}

function parsePrecision(v: string | undefined): Precision | undefined {
  if (v === undefined) return undefined;
  const p = PRECISIONS.find((x) => x === v);
  if (!p) throw new UserError(`--precision: expected ${PRECISIONS.join(' or ')}, got "${v}"`);
  return p;
}
