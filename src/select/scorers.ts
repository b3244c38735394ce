/**
 * The DocScorers the metrics use: CPU text scorers (hashed similarity, POS entropy) on a worker
 * pool, and model-based ones (model/transformers similarity, perplexity) on an engine.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createEngine, type Engine } from '../engine/index.js';
import { loadModel } from '../model/load.js';
import type { EmbedderSpec, Recipe } from '../recipe/types.js';
import { UserError } from '../util/errors.js';
import { HashedEmbedder, centroid } from './hashed.js';
import { cosineDense, denseCentroid, meanHiddenEmbeddings, perplexities } from './perplexity.js';
import type { DocScorer } from './metrics/metric.js';
import { TextScorerPool } from './text-pool.js';

/** Tokens per engine call when scoring (rows × padded length). */
export const SCORE_BATCH_TOKENS = 4096;

/** An engine holding the proxy (or embedder) model, run as the recipe's engine settings say. */
export async function proxyEngine(r: Recipe, dir: string): Promise<Engine> {
  const m = await loadModel(dir, { seed: r.train.seed });
  const engine = await createEngine(r.engine.kind, m.config, { threads: r.engine.threads || undefined, precision: r.engine.precision, recompute: r.engine.recompute });
  engine.loadWeights(m.weights);
  return engine;
}

/** Hashed similarity (given the task texts) or POS entropy, on worker threads. */
export class TextPoolScorer implements DocScorer {
  private readonly pool: TextScorerPool;
  private readonly column: 'similarity' | 'entropy';
  constructor(o: { hashed: { spec: EmbedderSpec; taskTexts: string[] } } | { entropy: true }, threads?: number) {
    let hashed = null;
    if ('hashed' in o) {
      const spec = { dim: o.hashed.spec.dim, ngrams: o.hashed.spec.ngrams };
      const e = new HashedEmbedder(spec);
      hashed = { spec, task: centroid(o.hashed.taskTexts.map((t) => e.embed(t)), spec.dim) };
    }
    this.column = hashed ? 'similarity' : 'entropy';
    this.pool = new TextScorerPool({ hashed, entropy: !hashed }, threads);
  }
  async score(texts: string[]): Promise<Float64Array> {
    return (await this.pool.score(texts))[this.column];
  }
  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Perplexity of each document's first `maxTokens` tokens under the proxy model. */
export class PerplexityScorer implements DocScorer {
  constructor(
    private readonly engine: Engine,
    private readonly maxTokens: number,
    readonly close?: () => Promise<void>,
  ) {}
  async score(_texts: string[], tokens: Int32Array[]): Promise<Float64Array> {
    return perplexities(this.engine, tokens, { maxTokens: this.maxTokens, batchTokens: SCORE_BATCH_TOKENS });
  }
}

/** Cosine between a dense document embedding and the task centroid, for any dense embedder. */
export class DenseSimilarityScorer implements DocScorer {
  private constructor(
    private readonly embed: (texts: string[], tokens: Int32Array[]) => Promise<Float32Array[]>,
    private readonly task: Float32Array,
    private readonly onClose?: () => Promise<void>,
  ) {}

  static async create(
    embed: (texts: string[], tokens: Int32Array[]) => Promise<Float32Array[]>,
    taskTexts: string[],
    taskTokens: Int32Array[],
    onClose?: () => Promise<void>,
  ): Promise<DenseSimilarityScorer> {
    const vs = await embed(taskTexts, taskTokens);
    return new DenseSimilarityScorer(embed, denseCentroid(vs, vs[0]?.length ?? 0), onClose);
  }

  async score(texts: string[], tokens: Int32Array[]): Promise<Float64Array> {
    const vs = await this.embed(texts, tokens);
    return Float64Array.from(vs, (v) => cosineDense(v, this.task));
  }
  async close(): Promise<void> {
    await this.onClose?.();
  }
}

/** `model` embedder: mean-pooled final hidden states of a GPT-NeoX model. */
export function modelEmbed(engine: Engine, maxTokens: number): (texts: string[], tokens: Int32Array[]) => Promise<Float32Array[]> {
  return async (_texts, tokens) => meanHiddenEmbeddings(engine, tokens, { maxTokens, batchTokens: SCORE_BATCH_TOKENS });
}

/** Texts per transformers.js call. */
const TRANSFORMERS_BATCH = 32;

/**
 * `transformers` embedder: a local transformers.js feature-extraction model directory (config.json,
 * tokenizer.json, onnx/model[_quantized].onnx), mean-pooled and normalised. Never downloads.
 */
export async function transformersEmbed(dir: string | undefined, key: string): Promise<(texts: string[]) => Promise<Float32Array[]>> {
  if (!dir) throw new UserError(`${key}.model: the transformers embedder needs a local model directory`);
  const abs = path.resolve(dir);
  for (const f of ['config.json', 'tokenizer.json']) {
    if (!existsSync(path.join(abs, f))) {
      throw new UserError(`${key}.model: ${abs} is not a transformers.js model directory (no ${f}); nothing is downloaded, so put the model there first`);
    }
  }
  const quantized = existsSync(path.join(abs, 'onnx', 'model_quantized.onnx'));
  if (!quantized && !existsSync(path.join(abs, 'onnx', 'model.onnx'))) {
    throw new UserError(`${key}.model: ${abs} has no onnx/model.onnx or onnx/model_quantized.onnx`);
  }
  const { pipeline, env } = await import('@xenova/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(abs) + path.sep;
  const extractor = await pipeline('feature-extraction', path.basename(abs), { quantized, local_files_only: true });
  return async (texts) => {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += TRANSFORMERS_BATCH) {
      const batch = texts.slice(i, i + TRANSFORMERS_BATCH).map((t) => (t.length ? t : ' '));
      const t = await extractor(batch, { pooling: 'mean', normalize: true });
      const [n, d] = t.dims as number[];
      const data = t.data as Float32Array;
      for (let r = 0; r < n; r++) out.push(Float32Array.from(data.subarray(r * d, (r + 1) * d)));
    }
    return out;
  };
}
