// Small configs, deterministic token ids and a short training scenario shared by the native engine tests.
import type { NeoXConfig } from '../../src/model/config.js';
import type { AdamWOptions, WeightMap } from '../../src/engine/engine.js';
import type { NativeEngineOptions } from '../../src/engine/native/index.js';
import { initWeights } from '../../src/model/init.js';

export function tinyConfig(o: Partial<NeoXConfig> = {}): NeoXConfig {
  return {
    hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64,
    rotary_pct: 0.25, rotary_emb_base: 10000, max_position_embeddings: 64, vocab_size: 97,
    layer_norm_eps: 1e-5, hidden_act: 'gelu', use_parallel_residual: true, tie_word_embeddings: false,
    initializer_range: 0.2, bos_token_id: 0, eos_token_id: 0, ...o,
  };
}

export function randomIds(n: number, vocab: number, seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

/** Pythia's AdamW settings at a small lr. */
export const adamw: AdamWOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1 };

/** Big enough that GEMMs span several blocks (and are not multiples of 32) and both threads get work. */
export const scenarioConfig = tinyConfig({ hidden_size: 64, intermediate_size: 256, vocab_size: 1000, num_hidden_layers: 2 });

/**
 * Two accumulating train steps with one AdamW update between them, then logprobs of fresh ids:
 * weights, grads, logprobs and loss to compare across runs, threads, kernels or precisions.
 */
export async function trainScenario(opts: NativeEngineOptions): Promise<{ w: WeightMap; g: WeightMap; lp: Float32Array; loss: number }> {
  const { createNativeEngine } = await import('../../src/engine/native/index.js');
  const c = scenarioConfig, B = 3, T = 70, o = adamw;
  const e = createNativeEngine(c, opts);
  e.loadWeights(initWeights(c, 4));
  let loss = 0;
  for (let s = 0; s < 2; s++) {
    loss = e.trainStep(randomIds(B * T, c.vocab_size, s), B, T);
    if (s === 0) e.applyAdamW(o);
  }
  const g = e.exportGrads(), w = e.exportWeights(), lp = e.tokenLogprobs(randomIds(B * T, c.vocab_size, 9), B, T);
  e.dispose();
  return { w, g, lp, loss };
}

/** Whether this CPU (and build) can run the named native kernel. */
export async function supportsKernel(kernel: 'scalar' | 'avx2' | 'avx512'): Promise<boolean> {
  const { createNativeEngine, nativeStatus } = await import('../../src/engine/native/index.js');
  if (!nativeStatus().ok) return false;
  try {
    createNativeEngine(tinyConfig(), { threads: 1, kernel }).dispose();
    return true;
  } catch {
    return false;
  }
}
