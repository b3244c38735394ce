// Small configs and deterministic token ids shared by the native engine tests.
import type { NeoXConfig } from '../../src/model/config.js';

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
