/**
 * Fresh Pythia initialisation, as GPT-NeoX trains it (`init_method: small_init`,
 * `output_layer_init_method: wang_init`): N(0, sqrt(2 / (5 d))) for embeddings, qkv, h→4h and the
 * output head; N(0, 2 / (L sqrt(d))) for attention.dense and dense_4h_to_h (the projections
 * into the residual stream); biases 0; layer norms weight 1, bias 0.
 *
 * Deterministic: each tensor has its own stream seeded from (seed, tensor name), so a tensor's
 * values do not depend on which other tensors exist or their order.
 */
import { paramSpecs, type NeoXConfig } from './config.js';
import type { WeightMap } from '../engine/engine.js';

export function initStd(name: string, c: NeoXConfig): number {
  const d = c.hidden_size;
  if (name.endsWith('attention.dense.weight') || name.endsWith('mlp.dense_4h_to_h.weight')) {
    return 2 / (c.num_hidden_layers * Math.sqrt(d));
  }
  return Math.sqrt(2 / (5 * d));
}

export function initWeights(c: NeoXConfig, seed = 0): WeightMap {
  const w: WeightMap = new Map();
  for (const s of paramSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (s.shape.length === 2) fillNormal(data, initStd(s.name, c), hashSeed(seed, s.name));
    else if (s.name.endsWith('layernorm.weight') || s.name.endsWith('final_layer_norm.weight')) data.fill(1);
    w.set(s.name, data);
  }
  return w;
}

/** FNV-1a over the name, mixed with the seed. */
function hashSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Standard normal via Box-Muller over a mulberry32 stream, scaled by `std`. */
export function fillNormal(out: Float32Array, std: number, seed: number): void {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1): log() stays finite
  };
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())) * std, a = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(a);
  }
}
