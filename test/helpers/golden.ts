/**
 * The golden GPT-NeoX fixture (/work/shared/golden/neox-tiny: independent PyTorch values), loaded
 * once for the engine tests (tfjs and native share it). Synchronous; `await loadGolden()` also works.
 */
import path from 'node:path';
import { ROOT } from '../../src/util/paths.js';
import { readHFConfig } from '../../src/model/hf-config.js';
import { openSafetensors } from '../../src/model/safetensors.js';
import { paramSpecs, type NeoXConfig } from '../../src/model/config.js';
import type { WeightMap } from '../../src/engine/engine.js';

export interface Golden {
  dir: string;
  config: NeoXConfig;
  /** F32 weights by HF name, in paramSpecs order. */
  weights: WeightMap;
  /** The same weights as stored in model-f16.safetensors, upcast to F32. */
  f16Weights: WeightMap;
  ids: Int32Array; // [batch, seq]
  batch: number;
  seq: number;
  logits: Float32Array; // [batch, seq, vocab]
  loss: number; // mean next-token cross-entropy
  /** d loss / d W for every weight, by HF name. */
  grads: WeightMap;
  /** Logits of the model with F16-rounded weights. */
  logitsF16: Float32Array;
}

/** $CPT_GOLDEN, else ../shared/golden/neox-tiny beside the project. */
export function goldenDir(): string {
  return path.resolve(process.env.CPT_GOLDEN ?? path.join(ROOT, '..', 'shared', 'golden', 'neox-tiny'));
}

/** Sequential residual, tanh GELU, tied embeddings, rotary_pct 0.5 (test/engine/fixtures/make_variant.py). */
export const VARIANT_DIR = path.join(ROOT, 'test', 'engine', 'fixtures', 'neox-tiny-variant');

const cache = new Map<string, Golden>();

/** The shared golden fixture by default, or another directory in the same layout. */
export function loadGolden(dir = goldenDir()): Golden {
  const hit = cache.get(dir);
  if (hit) return hit;
  const config = readHFConfig(dir);
  const specs = paramSpecs(config);
  const readAll = (file: string, prefix = ''): WeightMap => {
    const r = openSafetensors(path.join(dir, file));
    try {
      return new Map(specs.map((s) => [s.name, r.read(prefix + s.name)]));
    } finally {
      r.close();
    }
  };
  const weights = readAll('model.safetensors');
  const f16Weights = readAll('model-f16.safetensors');
  const grads = readAll('expected.safetensors', 'grad.');
  const e = openSafetensors(path.join(dir, 'expected.safetensors'));
  try {
    const [batch, seq] = e.tensors.get('input_ids')!.shape;
    cache.set(dir, {
      dir, config, weights, f16Weights, grads, batch, seq,
      ids: e.readInt32('input_ids'),
      logits: e.read('logits'),
      loss: e.read('loss')[0],
      logitsF16: e.read('logits_from_f16_weights'),
    });
  } finally {
    e.close();
  }
  return cache.get(dir)!;
}
