// What every engine (CPU here, CUDA in native/cuda/) shares about the model: its configuration,
// the parameter table in HF naming and order (the same as paramSpecs() in src/model/config.ts),
// the AdamW settings and the token-id check. Plain C++17, no CPU or GPU specifics.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace cpt {

struct ModelConfig {
  int hidden = 0, layers = 0, heads = 0, inter = 0, vocab = 0;
  double rotaryPct = 0.25, rotaryBase = 10000, lnEps = 1e-5;
  bool exactGelu = true, parallelResidual = true, tied = false;
};

struct ParamInfo {
  std::string name;
  std::vector<int> shape;
  bool decay;
  size_t size, offset;
};

struct AdamW {
  double lr, beta1, beta2, eps, weightDecay, clip;
};

// The scalars of one AdamW step, computed once on the host by every engine in the same way (as
// torch.optim.AdamW with torch.nn.utils.clip_grad_norm_): the clip coefficient from the global
// gradient norm, bias corrections for `step` (1-based), decoupled decay factor.
struct AdamStep {
  float coef, b1, b2, eps, stepSize, bc2s, decay;
};
inline AdamStep adamStep(const AdamW& o, double norm, int64_t step) {
  const double coef = o.clip > 0 ? std::min(1.0, o.clip / (norm + 1e-6)) : 1.0;
  const double bc1 = 1 - std::pow(o.beta1, (double)step), bc2 = 1 - std::pow(o.beta2, (double)step);
  return {(float)coef, (float)o.beta1, (float)o.beta2, (float)o.eps, (float)(o.lr / bc1), (float)std::sqrt(bc2),
          (float)(1 - o.lr * o.weightDecay)};
}

// Sizes derived from a validated config: head dim, rotary dim.
struct Dims {
  int D, H, hd, rd, I, V, L;
};

inline Dims validate(const ModelConfig& c) {
  if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.inter <= 0 || c.vocab <= 0)
    throw std::invalid_argument("config sizes must be positive");
  if (c.hidden % c.heads != 0) throw std::invalid_argument("hidden_size must be divisible by num_attention_heads");
  Dims d{c.hidden, c.heads, c.hidden / c.heads, 0, c.inter, c.vocab, c.layers};
  d.rd = (int)std::floor(d.hd * c.rotaryPct);
  if (d.rd % 2 != 0) throw std::invalid_argument("rotary dimension (head_dim * rotary_pct) must be even");
  return d;
}

// Every tensor in one flat buffer, in HF order; per layer the 12 tensors are contiguous in the
// order LayerPtrs walks them.
inline std::vector<ParamInfo> paramTable(const ModelConfig& c, size_t* total) {
  const Dims d = validate(c);
  std::vector<ParamInfo> ps;
  size_t at = 0;
  auto add = [&](const std::string& name, std::vector<int> shape, bool decay) {
    size_t n = 1;
    for (int s : shape) n *= (size_t)s;
    ps.push_back({name, std::move(shape), decay, n, at});
    at += n;
  };
  add("gpt_neox.embed_in.weight", {d.V, d.D}, true);
  for (int l = 0; l < d.L; l++) {
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d.D}, false);
    add(p + "input_layernorm.bias", {d.D}, false);
    add(p + "post_attention_layernorm.weight", {d.D}, false);
    add(p + "post_attention_layernorm.bias", {d.D}, false);
    add(p + "attention.query_key_value.weight", {3 * d.D, d.D}, true);
    add(p + "attention.query_key_value.bias", {3 * d.D}, false);
    add(p + "attention.dense.weight", {d.D, d.D}, true);
    add(p + "attention.dense.bias", {d.D}, false);
    add(p + "mlp.dense_h_to_4h.weight", {d.I, d.D}, true);
    add(p + "mlp.dense_h_to_4h.bias", {d.I}, false);
    add(p + "mlp.dense_4h_to_h.weight", {d.D, d.I}, true);
    add(p + "mlp.dense_4h_to_h.bias", {d.D}, false);
  }
  add("gpt_neox.final_layer_norm.weight", {d.D}, false);
  add("gpt_neox.final_layer_norm.bias", {d.D}, false);
  if (!c.tied) add("embed_out.weight", {d.V, d.D}, true);
  *total = at;
  return ps;
}

// One layer's tensors inside a flat buffer laid out by paramTable (weights, gradients, or a
// lower-precision copy of the weights: any element type).
template <class T>
struct LayerPtrs {
  T *ln1w, *ln1b, *ln2w, *ln2b, *qkvw, *qkvb, *ow, *ob, *upw, *upb, *downw, *downb;
  LayerPtrs(T* base, const std::vector<ParamInfo>& ps, const Dims& d, int l) {
    T* p = base + ps[1 + 12 * l].offset;
    const size_t D = d.D, I = d.I;
    ln1w = p, p += D;
    ln1b = p, p += D;
    ln2w = p, p += D;
    ln2b = p, p += D;
    qkvw = p, p += 3 * D * D;
    qkvb = p, p += 3 * D;
    ow = p, p += D * D;
    ob = p, p += D;
    upw = p, p += I * D;
    upb = p, p += I;
    downw = p, p += D * I;
    downb = p;
  }
};

inline void checkIds(const int32_t* ids, int B, int T, int V, bool needPairs) {
  if (B <= 0 || T <= 0) throw std::invalid_argument("batch and seq must be positive");
  if (needPairs && T < 2) throw std::invalid_argument("seq must be at least 2 to have next-token predictions");
  const size_t n = (size_t)B * T;
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= V)
      throw std::invalid_argument("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
}

inline void checkLengths(const int32_t* lengths, int B, int T) {
  for (int b = 0; b < B; b++)
    if (lengths[b] < 1 || lengths[b] > T)
      throw std::invalid_argument("lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                                  " is outside [1, seq]");
}

// Rotary tables as HF computes them: inv_freq and t * inv_freq in float32; [T, rd/2] each.
inline void ropeTables(const ModelConfig& c, int rd, int T, std::vector<float>& cs, std::vector<float>& sn) {
  const int half = rd / 2;
  cs.assign((size_t)T * (half > 0 ? half : 1), 1.f);
  sn.assign((size_t)T * (half > 0 ? half : 1), 0.f);
  for (int i = 0; i < half; i++) {
    const float inv = (float)(1.0 / std::pow(c.rotaryBase, (double)(2 * i) / rd));
    for (int t = 0; t < T; t++) {
      const float a = (float)t * inv;
      cs[(size_t)t * half + i] = (float)std::cos((double)a);
      sn[(size_t)t * half + i] = (float)std::sin((double)a);
    }
  }
}

}  // namespace cpt
