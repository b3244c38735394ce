import type { NeoXConfig } from './config.js';

/** Pythia suite shapes (EleutherAI/pythia-* config.json); the rest of each config is shared. */
const SHAPES: Record<string, { hidden: number; layers: number; heads: number; vocab: number }> = {
  '14m': { hidden: 128, layers: 6, heads: 4, vocab: 50304 },
  '31m': { hidden: 256, layers: 6, heads: 8, vocab: 50304 },
  '70m': { hidden: 512, layers: 6, heads: 8, vocab: 50304 },
  '160m': { hidden: 768, layers: 12, heads: 12, vocab: 50304 },
  '410m': { hidden: 1024, layers: 24, heads: 16, vocab: 50304 },
  '1b': { hidden: 2048, layers: 16, heads: 8, vocab: 50304 },
  '1.4b': { hidden: 2048, layers: 24, heads: 16, vocab: 50304 },
  '2.8b': { hidden: 2560, layers: 32, heads: 32, vocab: 50304 },
  '6.9b': { hidden: 4096, layers: 32, heads: 32, vocab: 50432 },
  '12b': { hidden: 5120, layers: 36, heads: 40, vocab: 50688 },
};

/** Peak learning rates of the Pythia training configs (min lr is 10% of these). */
export const PYTHIA_LR: Record<string, number> = {
  '14m': 1e-3, '31m': 1e-3, '70m': 1e-3, '160m': 6e-4, '410m': 3e-4,
  '1b': 3e-4, '1.4b': 2e-4, '2.8b': 1.6e-4, '6.9b': 1.2e-4, '12b': 1.2e-4,
};

export const PRESET_NAMES = Object.keys(SHAPES).map((s) => `pythia-${s}`);

/** "pythia-1b" or "1b" → its size key, or undefined if not a preset name. */
export function presetKey(name: string): string | undefined {
  const k = name.replace(/^(EleutherAI\/)?pythia-/, '').replace(/-deduped$/, '');
  return k in SHAPES ? k : undefined;
}

export function presetConfig(name: string): NeoXConfig {
  const k = presetKey(name);
  if (!k) throw new Error(`unknown Pythia preset "${name}". Should be one of: ${PRESET_NAMES.join(', ')}`);
  const s = SHAPES[k];
  return {
    hidden_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    intermediate_size: 4 * s.hidden,
    rotary_pct: 0.25,
    rotary_emb_base: 10000,
    max_position_embeddings: 2048,
    vocab_size: s.vocab,
    layer_norm_eps: 1e-5,
    hidden_act: 'gelu',
    use_parallel_residual: true,
    tie_word_embeddings: false,
    initializer_range: 0.02,
    bos_token_id: 0,
    eos_token_id: 0,
  };
}
