// GPT-NeoX (HF GPTNeoXForCausalLM) forward/backward/AdamW on the CPU, float32, weights,
// gradients and AdamW moments in native memory. Independent of Node (used by the N-API binding
// and by the standalone harness).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gemm.h"
#include "model.h"
#include "ops.h"
#include "threadpool.h"

namespace cpt {

class Engine {
 public:
  // kernel: "auto", "scalar", "avx2", "avx512"; throws std::invalid_argument on bad input.
  // bf16: null or "" for fp32; else "auto", "amx" or "avx512bf16" (bf16.h): run the model's
  // matmuls (layers, attention's per-head products and LM head, forward and backward) in bf16
  // with fp32 accumulation on that path where the CPU has it; silently fp32 elsewhere
  // (precision() and bf16Kernel() say which).
  Engine(const ModelConfig& c, int threads, const char* kernel, const char* bf16 = nullptr);
  ~Engine();

  const std::vector<ParamInfo>& params() const { return params_; }
  const char* kernelName() const { return gemm_.kernel()->name; }
  const char* precision() const { return gemm_.bf16() ? "bf16" : "fp32"; }
  const char* bf16Kernel() const { return bf16::name(gemm_.bf16Path()); }
  int threads() const { return pool_.size(); }
  size_t totalParams() const { return total_; }

  // Writable weights: whoever asks may change them, so the packed copies are packed again.
  float* weights() {
    weightsChanged();
    return w_.data();
  }
  // Gradients and AdamW moments exist from the first training use (a scoring engine never holds
  // them: 12 bytes per parameter).
  float* grads() { return ensureTrainState(), g_.data(); }
  float* moment1() { return ensureTrainState(), m_.data(); }
  float* moment2() { return ensureTrainState(), v_.data(); }
  int64_t step = 0;

  // The batch operations of ops.h: logits, tokenLogprobs, meanHidden, evalLoss, trainStep.
#define CPT_DECLARE_OP(method, c_name, result, out_elems, params, args, js_args) CPT_OP_SIGNATURE(method, result, params);
  CPT_OPS(CPT_DECLARE_OP)
#undef CPT_DECLARE_OP
  void zeroGrads();
  double applyAdamW(const AdamW& o);  // returns the pre-clip global gradient norm

 private:
  using LayerP = LayerPtrs<float>;
  // One layer's saved activations; N = B*T rows, D hidden, H heads of hd = D/H, I = inter.
  struct Acts {
    AlignedVec<float> x;                        // [N, D] the layer's input (residual stream)
    AlignedVec<float> ln1, ln1mean, ln1rstd;    // [N, D], [N], [N]
    AlignedVec<float> qkv;                      // [N, 3D] = [B, T, H, 3, hd] (NeoX interleaves per head)
    AlignedVec<float> lse;                      // [B, H, T] softmax log-sum-exp, for the backward
    AlignedVec<float> y;                        // [N, D] attention output, heads merged
    AlignedVec<float> x2;                       // [N, D] x + attention (sequential residual only)
    AlignedVec<float> ln2, ln2mean, ln2rstd;    // [N, D], [N], [N]
    AlignedVec<float> h1, g;                    // [N, I] up-projection, GELU(h1)
  };
  LayerP layer(float* base, int l) const;
  void ensureTrainState();
  void ensure(int B, int T, bool training);  // training: every layer's activations and the gradients' buffers
  void forward(const int32_t* ids, int B, int T, bool training);
  void backward(const int32_t* ids, int B, int T);
  // Chunked LM head + cross-entropy: never materialises [B*T, V]. mode 0: loss only,
  // 1: loss + gradients into dH_ and embed_out, 2: per-token logprobs into out.
  double headLoss(const int32_t* ids, int B, int T, int mode, double gradScale, float* out);
  void attentionForward(Acts& a, int B, int T);
  void attentionBackward(Acts& a, int B, int T, const float* dy, float* dqkv);
  // y = x W^T + b, W packed in pw.
  void linear(const float* x, int N, int in, const float* b, int out, float* y, const PackedB& pw);
  void packLayers();
  void weightsChanged() { headPacked_ = headNNPacked_ = layersPacked_ = false; }
  void linearBackward(const float* x, const float* dy, int N, int in, int out, const float* W, float* dW,
                      float* db, float* dx);
  void layerNorm(const float* x, const float* w, const float* b, int N, float* y, float* mean, float* rstd);
  void layerNormBackward(const float* x, const float* mean, const float* rstd, const float* w, const float* dy,
                         int N, float* dxAcc, float* dw, float* db);
  void colSumAdd(const float* x, int N, int C, float* out);
  void ropeTables(int T);  // cos_/sin_ for T positions (cached)

  ModelConfig c_;
  int D_, H_, hd_, rd_, I_, V_, L_;
  std::vector<ParamInfo> params_;
  size_t total_ = 0;
  AlignedVec<float> w_, g_, m_, v_;
  float *embIn_, *lnfw_, *lnfb_, *embOut_;
  float *gEmbIn_ = nullptr, *glnfw_ = nullptr, *glnfb_ = nullptr, *gEmbOut_ = nullptr;  // set with the gradients
  ThreadPool pool_;
  Gemm gemm_;
  int curB_ = 0, curT_ = 0, ropeT_ = 0;
  bool allLayers_ = false;  // ensure()'s training buffers exist for [curB_, curT_]
  std::vector<Acts> acts_;
  AlignedVec<float> xAlt_, xf_, lnf_, lnfmean_, lnfrstd_, ao_, mo_;  // xAlt_: scoring's second residual buffer
  AlignedVec<float> dX_, dH_, dy_, dqkv_, dh1_, dln1_, dln2_;
  std::vector<float> cos_, sin_;
  std::vector<AlignedVec<float>> scratch_;  // per thread: attention P and dP, 2 * T * T
  std::vector<PackedB> attnB_;                // per thread: three of one head's operands, packed
  std::vector<std::vector<double>> partial_;  // per thread partial sums (deterministic reductions)
  AlignedVec<float> logitBuf_;
  // embed_out packed as op(B) for logits (NT), by vocabulary blocks of kHeadBlock columns, and
  // whole for dH (NN)
  std::vector<PackedB> headBlocks_;
  PackedB head_;
  std::vector<PackedA> headRows_;     // per thread: its rows of the head's input (scoring)
  std::vector<AlignedBuf> headTiles_;  // per thread: a tile of logits (scoring)
  // Each layer's four weights packed for the forward products (qkv, dense, h_to_4h, 4h_to_h),
  // once per model when scoring and once per optimizer step when training: 2 bytes per parameter
  // (bf16) or 4 (fp32) beside the 16 of weights, gradients and moments.
  std::vector<PackedB> layerW_;
  bool headPacked_ = false, headNNPacked_ = false, layersPacked_ = false;  // packed from the current weights
  std::vector<double> rowLoss_, rowLse_;
  std::vector<float> rowTarget_;
};

}  // namespace cpt
