/**
 * GPT-NeoX (Pythia) configuration: the Hugging Face `config.json` fields we use, and the one place
 * where derived quantities and the parameter table are computed.
 */

/** The subset of HF `GPTNeoXConfig` that defines the computation. Field names are HF's own. */
export interface NeoXConfig {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  rotary_pct: number;
  rotary_emb_base: number;
  max_position_embeddings: number;
  vocab_size: number;
  layer_norm_eps: number;
  /** "gelu" = exact erf GELU (Pythia); "gelu_new"/"gelu_fast"/"gelu_pytorch_tanh" = tanh approximation. */
  hidden_act: string;
  use_parallel_residual: boolean;
  tie_word_embeddings: boolean;
  initializer_range: number;
  bos_token_id: number;
  eos_token_id: number;
}

/** Quantities derived from a config; computed only here. */
export interface Derived {
  headDim: number; // hidden / heads
  rotaryDim: number; // int(headDim * rotary_pct), as HF computes it
  exactGelu: boolean;
}

export function derive(c: NeoXConfig): Derived {
  const headDim = c.hidden_size / c.num_attention_heads;
  return {
    headDim,
    rotaryDim: Math.floor(headDim * c.rotary_pct),
    exactGelu: c.hidden_act === 'gelu',
  };
}

export interface ParamSpec {
  name: string; // HF tensor name
  shape: number[]; // HF layout: Linear weights are [out, in]
  decay: boolean; // AdamW weight decay applies (2-D weights only: no decay on biases and norms)
}

/** Every trainable tensor in HF naming and layout, in a fixed order shared by all engines. */
export function paramSpecs(c: NeoXConfig): ParamSpec[] {
  const D = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const out: ParamSpec[] = [{ name: 'gpt_neox.embed_in.weight', shape: [V, D], decay: true }];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `gpt_neox.layers.${l}.`;
    out.push(
      { name: p + 'input_layernorm.weight', shape: [D], decay: false },
      { name: p + 'input_layernorm.bias', shape: [D], decay: false },
      { name: p + 'post_attention_layernorm.weight', shape: [D], decay: false },
      { name: p + 'post_attention_layernorm.bias', shape: [D], decay: false },
      { name: p + 'attention.query_key_value.weight', shape: [3 * D, D], decay: true },
      { name: p + 'attention.query_key_value.bias', shape: [3 * D], decay: false },
      { name: p + 'attention.dense.weight', shape: [D, D], decay: true },
      { name: p + 'attention.dense.bias', shape: [D], decay: false },
      { name: p + 'mlp.dense_h_to_4h.weight', shape: [I, D], decay: true },
      { name: p + 'mlp.dense_h_to_4h.bias', shape: [I], decay: false },
      { name: p + 'mlp.dense_4h_to_h.weight', shape: [D, I], decay: true },
      { name: p + 'mlp.dense_4h_to_h.bias', shape: [D], decay: false },
    );
  }
  out.push(
    { name: 'gpt_neox.final_layer_norm.weight', shape: [D], decay: false },
    { name: 'gpt_neox.final_layer_norm.bias', shape: [D], decay: false },
  );
  if (!c.tie_word_embeddings) out.push({ name: 'embed_out.weight', shape: [V, D], decay: true });
  return out;
}

export function paramCount(c: NeoXConfig): number {
  return paramSpecs(c).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Training FLOPs per token of a `seq`-token sequence: 6 per parameter (forward 2, backward 4),
 * minus the input embedding (a lookup), plus the attention scores (12 · layers · hidden · seq).
 */
export function trainFlopsPerToken(c: NeoXConfig, seq: number): number {
  return 6 * (paramCount(c) - c.vocab_size * c.hidden_size) + 12 * c.num_hidden_layers * c.hidden_size * seq;
}
