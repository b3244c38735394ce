/**
 * Back-of-envelope figures for `cpt inspect`: corpus and training tokens, parameters, training memory
 * and time. Every figure says where it came from; guesses are marked as estimates.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { paramCount, trainFlopsPerToken, type NeoXConfig } from '../model/config.js';
import { listFiles } from '../data/formats/files.js';
import { taskTexts } from '../data/tasks/index.js';
import { ROOT } from '../util/paths.js';
import { ENGINES } from '../engine/registry.js';
import type { ModelInfo } from './model-info.js';
import type { Recipe, SourceSpec } from './types.js';

/** Raw-input bytes per GPT-NeoX token: ~4 for English prose. Markup (SGML, JSON) makes it an overestimate of tokens. */
export const BYTES_PER_TOKEN = 4;
export const ENGINE_BENCH = path.join(ROOT, 'checkpoints', 'bench', 'engine.json');

export interface TokenCount {
  tokens: number;
  estimated: boolean;
  /** How the count was obtained, in words. */
  from: string;
}

export interface Estimates {
  corpus: TokenCount;
  /** Tokens one pass over the selected (budgeted, non-held-out) data gives, and the run length. */
  train: { selectedTokens: number; tokens: number; steps: number; microBatchesPerStep: number; limitedBy: string };
  params?: { total: number; embedding: number; from: string };
  memory?: { weights: number; grads: number; adam: number; activations: number; total: number; assumption: string };
  time?: { flopsPerToken: number; gflops: number; gflopsFrom: string; secondsPerBillion: number; secondsTotal: number };
}

/** Domain-corpus tokens: the token cache if `cpt prepare` ran, else the prepared text bytes, else raw input bytes. */
export async function corpusTokens(r: Recipe): Promise<TokenCount> {
  const dir = r.data.prepared_dir;
  const tokDir = path.join(dir, 'tokens');
  if (existsSync(tokDir)) {
    for (const sub of readdirSync(tokDir)) {
      try {
        const idx = JSON.parse(readFileSync(path.join(tokDir, sub, 'index.json'), 'utf8')) as { tokens?: unknown };
        if (typeof idx.tokens === 'number') return { tokens: idx.tokens, estimated: false, from: `token cache ${path.join(tokDir, sub)}` };
      } catch {
        /* not a finished cache: try the next way */
      }
    }
  }
  try {
    const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { totals?: { text_bytes?: unknown } };
    const bytes = m.totals?.text_bytes;
    if (typeof bytes === 'number') return { tokens: Math.round(bytes / BYTES_PER_TOKEN), estimated: true, from: `prepared text bytes (${fmtBytes(bytes)}) / ${BYTES_PER_TOKEN}` };
  } catch {
    /* not prepared yet */
  }
  const bytes = await inputBytes(r.data.corpus);
  return { tokens: Math.round(bytes / BYTES_PER_TOKEN), estimated: true, from: `raw input bytes (${fmtBytes(bytes)}, markup included) / ${BYTES_PER_TOKEN}` };
}

async function inputBytes(sources: SourceSpec[]): Promise<number> {
  let n = 0;
  for (const s of sources) {
    try {
      for (const f of await listFiles(s.path, s.include)) n += f.size;
    } catch {
      /* missing input: inspect reports it separately */
    }
  }
  return n;
}

/** A recorded engine throughput, or the stated assumption. */
export function engineGflops(kind: Recipe['engine']['kind']): { gflops: number; from: string } {
  try {
    const j = JSON.parse(readFileSync(ENGINE_BENCH, 'utf8')) as { figures?: Record<string, unknown> };
    // bench:engine records the native engine's fp32 training GFLOP/s per shape; the largest shape
    // is closest to big models.
    const v = kind === 'native' ? (j.figures?.train_gflops_70m ?? j.figures?.train_gflops_14m) : undefined;
    if (typeof v === 'number' && v > 0) return { gflops: v, from: `measured (${path.relative(ROOT, ENGINE_BENCH)})` };
  } catch {
    /* no benchmark recorded */
  }
  const why = kind === 'native' ? `no ${path.relative(ROOT, ENGINE_BENCH)}; run npm run bench:engine` : `no measured ${kind} figure`;
  return { gflops: ENGINES[kind].assumedGflops, from: `assumed (${why})` };
}

/** TACP trains on the tasks' unlabeled train-split text: its characters / 4 (an estimate). */
async function taskTokens(r: Recipe, kitDir: string): Promise<TokenCount> {
  let chars = 0;
  for (const t of r.data.tasks) for (const s of await taskTexts(t, 'train', kitDir)) chars += s.length + 1;
  return { tokens: Math.round(chars / BYTES_PER_TOKEN), estimated: true, from: `train-split text of ${r.data.tasks.join(', ')} (${fmtCount(chars)} chars) / ${BYTES_PER_TOKEN}` };
}

/** `kitDir`: the data kit, for TACP's task text. */
export async function estimate(r: Recipe, model: ModelInfo, kitDir: string): Promise<Estimates> {
  const tacp = r.method === 'tacp';
  const corpus = tacp ? await taskTokens(r, kitDir) : await corpusTokens(r);
  const trainable = tacp ? corpus.tokens : corpus.tokens * (1 - r.data.fin_test_fraction);
  const selectedTokens = Math.round(trainable * (tacp ? 1 : r.selection.budget));
  let tokens = selectedTokens * r.train.epochs;
  let limitedBy = tacp ? `task text × ${r.train.epochs} epoch(s)` : `budget ${r.selection.budget} × ${r.train.epochs} epoch(s)`;
  if (r.train.max_tokens !== undefined && r.train.max_tokens < tokens) {
    tokens = r.train.max_tokens;
    limitedBy = 'train.max_tokens';
  }
  let steps = Math.ceil(tokens / r.train.batch_tokens);
  if (r.train.max_steps !== undefined && r.train.max_steps < steps) {
    steps = r.train.max_steps;
    tokens = steps * r.train.batch_tokens;
    limitedBy = 'train.max_steps';
  }
  const out: Estimates = {
    corpus,
    train: { selectedTokens, tokens, steps, microBatchesPerStep: r.train.batch_tokens / (r.train.seq_len * r.train.micro_batch), limitedBy },
  };
  const c = model.config;
  if (!c) return out;
  const total = paramCount(c);
  const embedding = c.vocab_size * c.hidden_size;
  out.params = { total, embedding, from: model.configFrom === 'path name' ? `pythia-${model.sizeKey} named by the path (no config.json yet)` : model.configFrom! };
  out.memory = memory(c, total, r.train.micro_batch, r.train.seq_len);
  const flopsPerToken = trainFlopsPerToken(c, r.train.seq_len);
  const g = engineGflops(r.engine.kind);
  out.time = {
    flopsPerToken,
    gflops: g.gflops,
    gflopsFrom: g.from,
    secondsPerBillion: (flopsPerToken * 1e9) / (g.gflops * 1e9),
    secondsTotal: (flopsPerToken * tokens) / (g.gflops * 1e9),
  };
  return out;
}

/**
 * fp32 weights, grads and two Adam moments (16 bytes/param), plus the activations an engine keeps for
 * backward without recomputation: per token and layer ~17·hidden floats (norms, qkv, rotary q/k, attention
 * output, MLP in/out) and 2·heads·seq floats (scores, probabilities), plus 2·vocab floats of logits.
 */
function memory(c: NeoXConfig, n: number, micro: number, seq: number): NonNullable<Estimates['memory']> {
  const perToken = c.num_hidden_layers * (17 * c.hidden_size + 2 * c.num_attention_heads * seq) + 2 * c.vocab_size;
  const activations = 4 * perToken * micro * seq;
  const weights = 4 * n, grads = 4 * n, adam = 8 * n;
  return {
    weights,
    grads,
    adam,
    activations,
    total: weights + grads + adam + activations,
    assumption: 'fp32; activations kept for backward (17·hidden + 2·heads·seq floats per token per layer, 2·vocab for logits), micro_batch × seq_len tokens',
  };
}

export function fmtBytes(b: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) (b /= 1024), i++;
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function fmtDuration(s: number): string {
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}
