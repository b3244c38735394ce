/**
 * Models in and out: a Hugging Face GPT-NeoX directory (config.json + safetensors) or a Pythia
 * preset name (fresh initialisation), and back to an HF directory that transformers loads as is.
 */
import { existsSync, statSync, copyFileSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { paramSpecs, type NeoXConfig } from './config.js';
import { presetConfig, presetKey, PRESET_NAMES } from './presets.js';
import { readHFConfig, writeHFConfig } from './hf-config.js';
import { openSafetensors, writeSafetensors, type TensorToWrite } from './safetensors.js';
import { initWeights } from './init.js';
import type { WeightMap } from '../engine/engine.js';
import { UserError } from '../util/errors.js';

export interface LoadedModel {
  config: NeoXConfig;
  weights: WeightMap;
  /** Where it came from: the directory, or "preset pythia-70m (seed 0)". */
  source: string;
}

/** Non-trainable HF buffers that some checkpoints carry; recomputed, never loaded. */
const IGNORED_SUFFIXES = ['attention.bias', 'attention.masked_bias', 'attention.rotary_emb.inv_freq'];

export async function loadModel(dirOrPreset: string, opts: { seed?: number } = {}): Promise<LoadedModel> {
  if (existsSync(dirOrPreset) && statSync(dirOrPreset).isDirectory()) {
    const config = readHFConfig(dirOrPreset);
    return { config, weights: readWeights(dirOrPreset, config), source: path.resolve(dirOrPreset) };
  }
  if (presetKey(dirOrPreset)) {
    const seed = opts.seed ?? 0;
    const config = presetConfig(dirOrPreset);
    return { config, weights: initWeights(config, seed), source: `preset ${dirOrPreset} (seed ${seed})` };
  }
  throw new UserError(
    `model "${dirOrPreset}" is neither a directory nor a Pythia preset. ` +
      `Expected a Hugging Face GPT-NeoX directory (config.json + model.safetensors) or one of: ${PRESET_NAMES.join(', ')}`,
  );
}

/** Every parameter of `config` from the directory's safetensors, shape-checked, as float32. */
export function readWeights(dir: string, config: NeoXConfig): WeightMap {
  const r = openSafetensors(dir);
  try {
    const specs = paramSpecs(config);
    const known = new Set(specs.map((s) => s.name));
    if (config.tie_word_embeddings) known.add('embed_out.weight'); // some exporters keep the tied copy
    const problems: string[] = [];
    for (const s of specs) {
      const t = r.tensors.get(s.name);
      if (!t) problems.push(`missing tensor "${s.name}" (expected shape [${s.shape}])`);
      else if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
        problems.push(`tensor "${s.name}" has shape [${t.shape}], expected [${s.shape}]`);
      }
    }
    const unexpected = [...r.tensors.keys()].filter((n) => !known.has(n) && !IGNORED_SUFFIXES.some((s) => n.endsWith(s)));
    if (unexpected.length) {
      problems.push(`unexpected tensor${unexpected.length > 1 ? 's' : ''} ${unexpected.slice(0, 5).map((n) => `"${n}"`).join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''} (not a GPT-NeoX parameter for this config.json)`);
    }
    if (problems.length) {
      const more = problems.length > 8 ? `\n  ... and ${problems.length - 8} more` : '';
      throw new UserError(`${dir}: weights do not match config.json:\n  ${problems.slice(0, 8).join('\n  ')}${more}`);
    }
    return new Map(specs.map((s) => [s.name, r.read(s.name)]));
  } finally {
    r.close();
  }
}

export interface SaveOptions {
  /** A tokenizer.json to copy beside the weights. */
  tokenizer?: string;
  /** Stored precision; default float32. */
  dtype?: 'float32' | 'bfloat16';
}

/**
 * Write an HF directory: config.json, model.safetensors (HF names, paramSpecs order) and
 * tokenizer.json when given. Each file is written atomically; config.json last, so a directory
 * with a config.json has its weights.
 */
export async function saveModel(dir: string, config: NeoXConfig, weights: WeightMap, opts: SaveOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'float32';
  const tensors = new Map<string, TensorToWrite>();
  for (const s of paramSpecs(config)) {
    const data = weights.get(s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!data) throw new Error(`saveModel: weights lack "${s.name}"`);
    if (data.length !== n) throw new Error(`saveModel: "${s.name}" has ${data.length} values, expected ${n} for [${s.shape}]`);
    tensors.set(s.name, { dtype: dtype === 'bfloat16' ? 'BF16' : 'F32', shape: s.shape, data });
  }
  mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  if (opts.tokenizer) {
    if (!existsSync(opts.tokenizer)) throw new UserError(`tokenizer ${opts.tokenizer}: no such file`);
    const dst = path.join(dir, 'tokenizer.json');
    if (path.resolve(opts.tokenizer) !== path.resolve(dst)) {
      const tmp = `${dst}.tmp-${process.pid}`;
      copyFileSync(opts.tokenizer, tmp);
      renameSync(tmp, dst);
    }
  }
  await writeHFConfig(dir, config, dtype);
}
