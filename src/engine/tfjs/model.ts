/**
 * GPT-NeoX forward pass in tfjs ops, written to match transformers' GPTNeoXForCausalLM line by
 * line. Pure functions of tensors: the engine wraps them in tidy/variableGrads.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import { tf } from './backend.js';
import { derive, type NeoXConfig } from '../../model/config.js';

type T = tfTypes.Tensor;
export type Params = (name: string) => T;

function layerNorm(x: T, w: T, b: T, eps: number): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(w).add(b);
}

function linear(x: T, w: T, b?: T): T {
  const y = tf.matMul(x as tfTypes.Tensor2D, w as tfTypes.Tensor2D, false, true);
  return b ? y.add(b) : y;
}

/** "gelu" is the exact erf form (Pythia); the others are the tanh approximation. */
function gelu(x: T, exact: boolean): T {
  if (exact) return x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5);
  const inner = x.add(x.square().mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(tf.tanh(inner).add(1)).mul(0.5);
}

/** cos/sin tables [seq, rd] for rotary position embeddings, laid out as HF's cat((freqs, freqs)). */
function rotaryTables(seq: number, rd: number, base: number): { cos: T; sin: T } {
  const cos = new Float32Array(seq * rd), sin = new Float32Array(seq * rd);
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < rd / 2; i++) {
      const invFreq = Math.fround(1 / Math.pow(base, (2 * i) / rd)); // float32 as torch computes it
      const a = Math.fround(t * invFreq);
      cos[t * rd + i] = cos[t * rd + i + rd / 2] = Math.cos(a);
      sin[t * rd + i] = sin[t * rd + i + rd / 2] = Math.sin(a);
    }
  }
  return { cos: tf.tensor2d(cos, [seq, rd]), sin: tf.tensor2d(sin, [seq, rd]) };
}

/** Rotary on the first rd features of each head, `rotate_half` (half-split) convention. */
function applyRotary(z: T, cos: T, sin: T, rd: number): T {
  const hd = z.shape[3]!;
  if (rd === 0) return z;
  const zr = z.slice([0, 0, 0, 0], [-1, -1, -1, rd]);
  const z1 = zr.slice([0, 0, 0, 0], [-1, -1, -1, rd / 2]);
  const z2 = zr.slice([0, 0, 0, rd / 2], [-1, -1, -1, rd / 2]);
  const rotated = zr.mul(cos).add(tf.concat([z2.neg(), z1], -1).mul(sin));
  if (rd === hd) return rotated;
  return tf.concat([rotated, z.slice([0, 0, 0, rd], [-1, -1, -1, hd - rd])], -1);
}

/** Additive causal mask [seq, seq]: 0 on and below the diagonal, a large negative above. */
function causalMask(seq: number): T {
  const m = new Float32Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) m[i * seq + j] = -1e9;
  return tf.tensor2d(m, [seq, seq]);
}

function attention(c: NeoXConfig, p: Params, prefix: string, x: T, batch: number, seq: number, rope: { cos: T; sin: T }, mask: T): T {
  const H = c.num_attention_heads, { headDim: hd, rotaryDim: rd } = derive(c);
  // query_key_value rows are per head [q_h | k_h | v_h] (HF layout).
  const qkv = linear(x, p(prefix + 'query_key_value.weight'), p(prefix + 'query_key_value.bias'))
    .reshape([batch, seq, H, 3 * hd])
    .transpose([0, 2, 1, 3]); // [B, H, T, 3hd]
  const q = applyRotary(qkv.slice([0, 0, 0, 0], [-1, -1, -1, hd]), rope.cos, rope.sin, rd); // [B, H, T, hd]
  const k = applyRotary(qkv.slice([0, 0, 0, hd], [-1, -1, -1, hd]), rope.cos, rope.sin, rd); // [B, H, T, hd]
  const v = qkv.slice([0, 0, 0, 2 * hd], [-1, -1, -1, hd]); // [B, H, T, hd]
  const scores = tf.matMul(q as tfTypes.Tensor4D, k as tfTypes.Tensor4D, false, true).mul(1 / Math.sqrt(hd)).add(mask); // [B, H, T, T]
  const y = tf.matMul(tf.softmax(scores, -1) as tfTypes.Tensor4D, v as tfTypes.Tensor4D) // [B, H, T, hd]
    .transpose([0, 2, 1, 3])
    .reshape([batch * seq, c.hidden_size]); // [B*T, D]
  return linear(y, p(prefix + 'dense.weight'), p(prefix + 'dense.bias')); // [B*T, D]
}

function mlp(c: NeoXConfig, p: Params, prefix: string, x: T): T {
  const h = gelu(linear(x, p(prefix + 'dense_h_to_4h.weight'), p(prefix + 'dense_h_to_4h.bias')), derive(c).exactGelu); // [B*T, I]
  return linear(h, p(prefix + 'dense_4h_to_h.weight'), p(prefix + 'dense_4h_to_h.bias')); // [B*T, D]
}

/**
 * Embedding lookup whose gradient is a scatter-add done in JS: tfjs's own gather gradient is an
 * unsortedSegmentSum that costs O(vocab x tokens x hidden) on the cpu backend.
 */
function embed(table: T, ids: Int32Array): T {
  const [V, D] = table.shape as [number, number];
  const f = tf.customGrad((...inputs) => ({
    value: tf.gather(inputs[0] as T, tf.tensor1d(ids, 'int32')),
    gradFunc: (dy: tfTypes.Tensor) => {
      const g = new Float32Array(V * D), d = dy.dataSync();
      for (let i = 0; i < ids.length; i++) {
        const row = ids[i] * D;
        for (let k = 0; k < D; k++) g[row + k] += d[i * D + k];
      }
      return tf.tensor2d(g, [V, D]);
    },
  }));
  return f(table) as T;
}

/** Final hidden states after the final layer norm, [batch * seq, hidden]. */
export function hiddenStates(c: NeoXConfig, p: Params, ids: Int32Array, batch: number, seq: number): T {
  const eps = c.layer_norm_eps;
  const rope = rotaryTables(seq, derive(c).rotaryDim, c.rotary_emb_base);
  const mask = causalMask(seq);
  let x = embed(p('gpt_neox.embed_in.weight'), ids); // [B*T, D]
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const pre = `gpt_neox.layers.${l}.`;
    const ln1 = layerNorm(x, p(pre + 'input_layernorm.weight'), p(pre + 'input_layernorm.bias'), eps);
    const a = attention(c, p, pre + 'attention.', ln1, batch, seq, rope, mask);
    if (c.use_parallel_residual) {
      const ln2 = layerNorm(x, p(pre + 'post_attention_layernorm.weight'), p(pre + 'post_attention_layernorm.bias'), eps);
      x = x.add(a).add(mlp(c, p, pre + 'mlp.', ln2));
    } else {
      const h = x.add(a);
      const ln2 = layerNorm(h, p(pre + 'post_attention_layernorm.weight'), p(pre + 'post_attention_layernorm.bias'), eps);
      x = h.add(mlp(c, p, pre + 'mlp.', ln2));
    }
  }
  return layerNorm(x, p('gpt_neox.final_layer_norm.weight'), p('gpt_neox.final_layer_norm.bias'), eps);
}

/** The output head (embed_in when embeddings are tied) applied to hidden states [n, hidden]. */
function head(c: NeoXConfig, p: Params, h: T): T {
  return linear(h, p(c.tie_word_embeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight'));
}

/** Logits [batch * seq, vocab]. */
export function logits(c: NeoXConfig, p: Params, ids: Int32Array, batch: number, seq: number): T {
  return head(c, p, hiddenStates(c, p, ids, batch, seq));
}

/**
 * log softmax(logits)[i, targets[i]] for rows of [n, V] logits, in float64 JS with its own
 * gradient dy_i * (onehot - softmax): tfjs's logSoftmax + selection costs several passes of
 * slow broadcasting ops over n x V on the cpu backend.
 */
function pickLogprobs(logits: T, targets: Int32Array): T {
  const [n, V] = logits.shape as [number, number];
  const f = tf.customGrad((...inputs) => {
    const x = (inputs[0] as T).dataSync();
    const lse = new Float64Array(n), out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const row = i * V;
      let m = -Infinity;
      for (let j = 0; j < V; j++) if (x[row + j] > m) m = x[row + j];
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(x[row + j] - m);
      lse[i] = m + Math.log(s);
      out[i] = x[row + targets[i]] - lse[i];
    }
    return {
      value: tf.tensor1d(out),
      gradFunc: (dy: tfTypes.Tensor) => {
        const d = dy.dataSync(), g = new Float32Array(n * V);
        for (let i = 0; i < n; i++) {
          const row = i * V, di = d[i], l = lse[i];
          for (let j = 0; j < V; j++) g[row + j] = -di * Math.exp(x[row + j] - l);
          g[row + targets[i]] += di;
        }
        return tf.tensor2d(g, [n, V]);
      },
    };
  });
  return f(logits) as T;
}

/** log p(ids[b, t+1] | ids[b, <=t]) as [batch, seq - 1]. */
export function targetLogprobs(c: NeoXConfig, p: Params, ids: Int32Array, batch: number, seq: number): T {
  const n = batch * (seq - 1);
  // The last position predicts nothing: drop it before the head (slicing logits is far costlier).
  const h = hiddenStates(c, p, ids, batch, seq).reshape([batch, seq, c.hidden_size]).slice([0, 0, 0], [batch, seq - 1, c.hidden_size]);
  const lg = head(c, p, h.reshape([n, c.hidden_size]));
  const next = new Int32Array(n);
  for (let b = 0; b < batch; b++) next.set(ids.subarray(b * seq + 1, (b + 1) * seq), b * (seq - 1));
  return pickLogprobs(lg, next).reshape([batch, seq - 1]);
}

export function meanLoss(c: NeoXConfig, p: Params, ids: Int32Array, batch: number, seq: number): tfTypes.Scalar {
  return targetLogprobs(c, p, ids, batch, seq).mean().neg() as tfTypes.Scalar;
}
