// GPT-NeoX (HF GPTNeoXForCausalLM) training and scoring on one NVIDIA GPU: the same contract,
// parameter table and algorithms as the CPU engine (native/src/engine.cpp), with matrix products
// on cuBLASLt and everything else in kernels.cuh. Master weights, gradients and AdamW moments are
// fp32; with bf16 the products take bf16 operands (a bf16 copy of the weights, refreshed after
// every update) and bf16 activations, accumulating in fp32. Attention runs by blocks of query
// rows: only a [B*H, rows, T] slice of scores exists at a time and backward recomputes the
// probabilities from the saved log-sum-exp. With bf16, a head dimension of 32, 64, 80, 128 or 256
// and CPT_CUDA_ATTENTION=mma, attention is fused instead (attention.cuh): no scores in HBM.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../src/model.h"
#include "attention.cuh"
#include "common.h"
#include "cpt_cuda.h"
#include "gemm.h"
#include "kernels.cuh"

namespace cpt {
namespace cuda {

namespace {

// Overrides of the attention row block, the LM-head chunk and the sort tile, so that the parity
// checks cover several blocks, chunks and tiles with ragged ends on small shapes.
size_t envSize(const char* name, size_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? (size_t)std::strtoull(v, nullptr, 10) : dflt;
}

int blocksFor(size_t n) { return (int)std::min<size_t>((n + kThreads - 1) / kThreads, 4096); }
int cdiv(size_t a, size_t b) { return (int)((a + b - 1) / b); }
// The engine's switches: the variable's value, the first of `values` (the default) when it is
// unset or empty; any other value is refused (a typo would otherwise run the default silently).
// CPT_CUDA_ATTENTION=mma and CPT_CUDA_SOFTMAX=warp opt in, CPT_CUDA_EPILOGUES=0 and
// CPT_CUDA_GRAPHS=0 out.
std::string envChoice(const char* name, std::initializer_list<const char*> values) {
  const char* v = std::getenv(name);
  if (!v || !*v) return *values.begin();
  std::string all;
  for (const char* x : values) {
    if (std::string(v) == x) return v;
    all += all.empty() ? x : std::string(", ") + x;
  }
  throw std::invalid_argument(std::string(name) + "=" + v + ": expected one of " + all);
}
// Leading dimension of a score row of `cols` keys: a multiple of 8 elements (16-byte rows).
int ldOf(int cols) { return (cols + 7) / 8 * 8; }

// Device memory owned by one engine, freed with it.
class Arena {
 public:
  ~Arena() {
    for (void* p : ptrs_) cudaFree(p);
  }
  template <class X>
  X* get(size_t n) {
    if (n == 0) n = 1;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, n * sizeof(X));
    if (e != cudaSuccess) {
      size_t freeB = 0, totalB = 0;
      cudaGetLastError();
      cudaMemGetInfo(&freeB, &totalB);
      throw std::runtime_error("out of GPU memory: " + std::to_string(n * sizeof(X) >> 20) + " MiB more needed, " +
                               std::to_string(freeB >> 20) + " of " + std::to_string(totalB >> 20) +
                               " MiB free (try a smaller micro_batch or engine.recompute: true)");
    }
    ptrs_.push_back(p);
    return static_cast<X*>(p);
  }
  void release() {
    for (void* p : ptrs_) cudaFree(p);
    ptrs_.clear();
  }

 private:
  std::vector<void*> ptrs_;
};

}  // namespace

// What the C API needs of an engine, whatever its activation type.
class EngineBase {
 public:
  virtual ~EngineBase() = default;
  std::vector<ParamInfo> params;
  size_t total = 0;
  int64_t step = 0;
  virtual void setTensor(int which, int i, const float* data) = 0;
  virtual void getTensor(int which, int i, float* out) = 0;
#define CPT_DECLARE_OP(method, c_name, result, out_elems, params, args, js_args) \
  virtual CPT_OP_SIGNATURE(method, result, params) = 0;
  CPT_OPS(CPT_DECLARE_OP)
#undef CPT_DECLARE_OP
  virtual void zeroGrads() = 0;
  virtual double adamw(const AdamW& o) = 0;
};

template <class Act>
class Engine final : public EngineBase {
  static constexpr bool kBf16 = std::is_same<Act, __nv_bfloat16>::value;
  static constexpr cudaDataType_t kAB = kBf16 ? CUDA_R_16BF : CUDA_R_32F;

 public:
  Engine(const ModelConfig& c, bool recompute) : c_(c), d_(validate(c)), recompute_(recompute) {
    params = paramTable(c, &total);
    w_ = fixed_.get<float>(total), g_ = fixed_.get<float>(total);
    m_ = fixed_.get<float>(total), v_ = fixed_.get<float>(total);
    for (float* p : {w_, g_, m_, v_}) CUDA_CHECK(cudaMemset(p, 0, total * sizeof(float)));
    if constexpr (kBf16) wT_ = fixed_.get<Act>(total);
    else wT_ = w_;
    normPart_ = fixed_.get<double>(kNormBlocks), normSq_ = fixed_.get<double>(1), lossSum_ = fixed_.get<double>(1);
    CUDA_CHECK(cudaEventCreate(&idsCopied_));
    // The engine's own stream (blocking: the legacy stream's copies wait for it and it for them),
    // so that a step can be captured as a CUDA graph.
    CUDA_CHECK(cudaStreamCreate(&s_));
    lt_.setStream(s_);
    // AdamW's chunks: every tensor cut into pieces of kAdamChunk (one launch updates them all).
    std::vector<AdamChunk> chunks;
    for (const ParamInfo& p : params)
      for (size_t b = p.offset; b < p.offset + p.size; b += kAdamChunk)
        chunks.push_back({b, std::min(p.offset + p.size, b + kAdamChunk), (int)p.decay});
    adamChunks_ = (int)chunks.size();
    chunks_ = fixed_.get<AdamChunk>(chunks.size());
    CUDA_CHECK(cudaMemcpy(chunks_, chunks.data(), chunks.size() * sizeof(AdamChunk), cudaMemcpyHostToDevice));
    const size_t lnf = params[1 + 12 * d_.L].offset;
    lnfw_ = w_ + lnf, lnfb_ = lnfw_ + d_.D, glnfw_ = g_ + lnf, glnfb_ = glnfw_ + d_.D;
    const size_t out = c.tied ? 0 : params.back().offset;
    embOutT_ = wT_ + out, gEmbOut_ = g_ + out;
    // Fused attention on mma.sync tiles (attention.cuh) with CPT_CUDA_ATTENTION=mma (forward and
    // backward; not yet measured), where there are kernels for the head dimension; else the
    // unfused path, said once.
    const std::string attention = envChoice("CPT_CUDA_ATTENTION", {"unfused", "mma"});
    if (kBf16 && attention == "mma") withHeadDim(d_.hd, [&](auto hd) { mma_ = allowMmaSmem<hd()>(); });
    if (attention != "unfused" && !mma_)
      std::fprintf(stderr, "cpt: CPT_CUDA_ATTENTION=%s: %s; the unfused attention runs\n", attention.c_str(),
                   !kBf16 ? "its kernels are bf16 only" : "no kernels for this head dimension or too little shared memory");
    // Training's cross-entropy with the row in shared memory where a row fits (Pythia's 50,304
    // logits: 197 KiB, on Hopper's 227; not on an A100's 163) and V % 4 == 0.
    ceRow_ = d_.V % 4 == 0 && crossEntropyRowSmem(d_.V) <= smemOptin();
    if (ceRow_)
      CUDA_CHECK(cudaFuncSetAttribute(crossEntropyRowKernel<Act>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)crossEntropyRowSmem(d_.V)));
  }

  void setTensor(int which, int i, const float* data) override {
    if (which == 1) materialiseGrads();
    CUDA_CHECK(cudaMemcpy(slot(which) + params[i].offset, data, params[i].size * sizeof(float), cudaMemcpyHostToDevice));
    if (which == 0) stale_ = true;
  }
  void getTensor(int which, int i, float* out) override {
    if (which == 1 && fresh_) return std::fill(out, out + params[i].size, 0.f);
    CUDA_CHECK(cudaMemcpy(out, slot(which) + params[i].offset, params[i].size * sizeof(float), cudaMemcpyDeviceToHost));
  }

  void logits(const int32_t* ids, int B, int T, float* out) override {
    checkIds(ids, B, T, d_.V, false);
    forward(ids, B, T);
    const size_t N = (size_t)B * T;
    float* buf = nullptr;
    CUDA_CHECK(cudaMalloc(&buf, N * d_.V * sizeof(float)));
    try {
      lt_.gemm(false, true, (int)N, d_.V, d_.D, 1.f, Mat{lnf_, d_.D, 0}, Mat{embOutT_, d_.D, 0}, 0.f, buf, d_.V, 0, 1, kAB,
               CUDA_R_32F);
      CUDA_CHECK(cudaMemcpy(out, buf, N * d_.V * sizeof(float), cudaMemcpyDeviceToHost));
    } catch (...) {
      cudaFree(buf);
      throw;
    }
    cudaFree(buf);
  }

  // The loss is read back once the whole step is queued: the host waits only at the end.
  double trainStep(const int32_t* ids, int B, int T, double gradScale) override {
    checkIds(ids, B, T, d_.V, true);
    upload(ids, B, T);
    runStep(GraphKey{B, T, gradScale, adds()}, [&] {
      forwardBody(B, T);
      head(B, T, 1, gradScale, nullptr);
      backward(B, T);
      sumLoss(B, T);
    });
    fresh_ = false;
    return readLoss(B, T);
  }
  double evalLoss(const int32_t* ids, int B, int T) override {
    checkIds(ids, B, T, d_.V, true);
    forward(ids, B, T);
    head(B, T, 0, 0, nullptr);
    return meanLoss(B, T);
  }
  void tokenLogprobs(const int32_t* ids, int B, int T, float* out) override {
    checkIds(ids, B, T, d_.V, true);
    forward(ids, B, T);
    float* lp = scratchF(lp_, lpCap_, (size_t)B * (T - 1));
    head(B, T, 2, 0, lp);
    CUDA_CHECK(cudaMemcpy(out, lp, (size_t)B * (T - 1) * sizeof(float), cudaMemcpyDeviceToHost));
  }
  void meanHidden(const int32_t* ids, int B, int T, const int32_t* lengths, float* out) override {
    checkIds(ids, B, T, d_.V, false);
    checkLengths(lengths, B, T);
    forward(ids, B, T);
    CUDA_CHECK(cudaMemcpy(lengths_, lengths, B * sizeof(int32_t), cudaMemcpyHostToDevice));
    CPT_LAUNCH(meanHiddenKernel, dim3(cdiv(d_.D, kThreads), B), kThreads)(xf_, meanf_, rstdf_, lnfw_, lnfb_, lengths_,
                                                                          dOut_, T, d_.D);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaMemcpy(out, dOut_, (size_t)B * d_.D * sizeof(float), cudaMemcpyDeviceToHost));
  }

  // The gradient is zero from here on without a pass over it: the next backward writes it.
  void zeroGrads() override { fresh_ = true; }

  // Where CPT_LAUNCH puts the engine's kernels (common.h).
  cudaStream_t cptStream() const { return s_; }

  // The global norm and the clip coefficient stay on the device; the norm comes back after the
  // update is queued. A norm that is not finite changes no weight, moment or step (the contract).
  // Either way the gradient is zero afterwards (fresh_), without a pass that writes it.
  double adamw(const AdamW& o) override {
    materialiseGrads();  // no backward since the last update: a zero gradient
    CPT_LAUNCH(sumSquaresKernel, kNormBlocks, kThreads, kSumSmem)(g_, total, normPart_);
    LAUNCH_CHECK();
    CPT_LAUNCH(sumKernel, 1, 1024, kSumSmem)(normPart_, kNormBlocks, normSq_);
    LAUNCH_CHECK();
    const AdamStep a = adamStep(o, 0, step + 1);  // all but the clip coefficient
    // bf16: the update writes the products' copy of the weights too, unless it is stale already.
    Act* wT = kBf16 && !stale_ ? wT_ : nullptr;
    CPT_LAUNCH(adamwKernel<Act>, adamChunks_, kThreads)(
        w_, g_, m_, v_, total, chunks_, AdamCoef{0, a.b1, a.b2, a.eps, a.stepSize, a.bc2s, a.decay, o.clip}, normSq_, wT);
    LAUNCH_CHECK();
    double sq = 0;
    CUDA_CHECK(cudaMemcpy(&sq, normSq_, sizeof sq, cudaMemcpyDeviceToHost));
    const double norm = std::sqrt(sq);
    if (std::isfinite(norm)) step++, stale_ = kBf16 && !wT;
    fresh_ = true;
    return norm;
  }

 private:
  static constexpr int kNormBlocks = 1024;
  static constexpr int kColRows = 64;  // rows per chunk of a column sum

  // One layer's saved activations; N = B*T rows, D hidden, H heads of hd = D/H, I = inter.
  struct Acts {
    float *x = nullptr, *x2 = nullptr;  // [N, D] layer input; x + attention (sequential residual only)
    float *mean1, *rstd1, *mean2, *rstd2;  // [N] layer-norm statistics; 2: ln2 of x2 (sequential only)
    float* lse;                          // [B, H, T] softmax log-sum-exp, for the backward
    Act *ln1, *ln2;                      // [N, D]
    Act *q, *k, *v;                      // [B, H, T, hd] rotated, heads layout
    Act *yh, *y;                         // [B, H, T, hd] attention output (not with mma_); [N, D] heads merged
    Act *h1, *g;                         // [N, I] up-projection, GELU(h1)
  };

  float* slot(int which) {
    if (which < 0 || which > 3) throw std::invalid_argument("bad tensor slot");
    return which == 0 ? w_ : which == 1 ? g_ : which == 2 ? m_ : v_;
  }
  float* scratchF(float*& p, size_t& cap, size_t n) {
    if (n > cap) {
      if (p) cudaFree(p);
      p = nullptr;
      cap = 0;
      CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
      cap = n;
    }
    return p;
  }

  // Allocate activations for [B, T] (reused while the shape stays) and upload the rotary tables.
  void ensure(int B, int T) {
    if (B == curB_ && T == curT_) return;
    dropGraphs();  // they name the buffers released here
    act_.release();
    curB_ = curT_ = 0;  // until every buffer below exists again
    const size_t N = (size_t)B * T, D = d_.D, I = d_.I, BH = (size_t)B * d_.H;
    acts_.assign(d_.L, Acts{});
    auto fill = [&](Acts& a) {
      a.ln1 = act_.get<Act>(N * D), a.mean1 = act_.get<float>(N), a.rstd1 = act_.get<float>(N);
      a.q = act_.get<Act>(N * D), a.k = act_.get<Act>(N * D), a.v = act_.get<Act>(N * D), a.lse = act_.get<float>(BH * T);
      a.yh = mma_ ? nullptr : act_.get<Act>(N * D), a.y = act_.get<Act>(N * D);
      a.ln2 = act_.get<Act>(N * D);
      if (!c_.parallelResidual)  // else ln2 has ln1's statistics
        a.x2 = act_.get<float>(N * D), a.mean2 = act_.get<float>(N), a.rstd2 = act_.get<float>(N);
      a.h1 = act_.get<Act>(N * I), a.g = act_.get<Act>(N * I);
    };
    // With recomputation only each layer's input survives the forward pass; one set of the
    // other activations is shared and refilled layer by layer in backward.
    Acts shared{};
    if (recompute_) fill(shared);
    for (Acts& a : acts_) {
      if (recompute_) a = shared;
      else fill(a);
      a.x = act_.get<float>(N * D);
    }
    xf_ = act_.get<float>(N * D), lnf_ = act_.get<Act>(N * D), meanf_ = act_.get<float>(N), rstdf_ = act_.get<float>(N);
    tmp_ = act_.get<float>(N * std::max(3 * D, I)), ao_ = act_.get<float>(N * D), mo_ = act_.get<float>(N * D);
    dX_ = act_.get<float>(N * D), dXT_ = kBf16 ? act_.get<Act>(N * D) : nullptr, dH_ = act_.get<Act>(N * D);
    dh_ = act_.get<Act>(N * I), dln1_ = act_.get<Act>(N * D), dln2_ = act_.get<Act>(N * D);
    dyh_ = mma_ ? nullptr : act_.get<Act>(N * D);
    dq_ = dk_ = dv_ = nullptr;  // not with the mma backward writing dqkvT_ itself
    if (mmaRotaryTiles() < 0) dq_ = act_.get<float>(N * D), dk_ = act_.get<float>(N * D), dv_ = act_.get<float>(N * D);
    dqkvT_ = act_.get<Act>(N * 3 * D);
    part_ = act_.get<float>((size_t)cdiv(N, kColRows) * std::max(4 * D, I));
    if (mma_) {
      rowDot_ = act_.get<float>(BH * T);
    } else {
      // Attention row block: the [B*H, rows, T] score slices stay near 64 MiB each.
      rb_ = (int)std::min<size_t>(T, envSize("CPT_CUDA_ATTN_ROWS", std::max<size_t>(64, ((size_t)16 << 20) / (BH * T) / 64 * 64)));
      const size_t sc = BH * rb_ * ldOf(T);
      S_ = act_.get<float>(sc), dP_ = act_.get<float>(sc), P_ = act_.get<Act>(sc), dS_ = act_.get<Act>(sc);
    }
    // LM head: rows per chunk so the fp32 logits stay near 256 MiB (1334 rows at Pythia's vocabulary).
    // Each chunk's weight-gradient product reads and writes the fp32 [V, D] gradient once: at fewer
    // rows than about 4 x (tensor peak / HBM bandwidth), 1200 on an H100, that traffic outweighs its math.
    hr_ = (int)std::min<size_t>(N, envSize("CPT_CUDA_HEAD_ROWS", std::max<size_t>(64, ((size_t)64 << 20) / d_.V)));
    logits_ = act_.get<float>((size_t)hr_ * d_.V), dl_ = act_.get<Act>((size_t)hr_ * d_.V);
    rowLoss_ = act_.get<double>(N), ids_ = act_.get<int32_t>(N), lengths_ = act_.get<int32_t>(B);
    dOut_ = act_.get<float>((size_t)B * D);
    for (int i = 0; i < 2; i++) sortKeys_[i] = act_.get<int32_t>(N), sortRows_[i] = act_.get<int32_t>(N);
    // Sort tile: 2048 ids (8 KiB of shared memory).
    st_ = (int)std::min<size_t>(N, envSize("CPT_CUDA_SORT_TILE", 2048));
    sortCounts_ = act_.get<int32_t>((size_t)kRadix * cdiv(N, st_));
    CUDA_CHECK(cudaFreeHost(idsHost_));
    idsHost_ = nullptr;
    CUDA_CHECK(cudaMallocHost(&idsHost_, N * sizeof(int32_t)));
    std::vector<float> cs, sn;
    ropeTables(c_, d_.rd, T, cs, sn);
    cos_ = act_.get<float>(cs.size()), sin_ = act_.get<float>(sn.size());
    CUDA_CHECK(cudaMemcpy(cos_, cs.data(), cs.size() * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(sin_, sn.data(), sn.size() * sizeof(float), cudaMemcpyHostToDevice));
    curB_ = B, curT_ = T;
  }

  // y[N, out] (fp32) = x[N, in] W[out, in]^T
  void linear(const Act* x, int N, int in, const Act* W, int out, float* y) {
    lt_.gemm(false, true, N, out, in, 1.f, Mat{x, in, 0}, Mat{W, in, 0}, 0.f, y, out, 0, 1, kAB, CUDA_R_32F);
  }
  // y[N, out] (bf16) = x W^T + b, the bias (bf16, as PyTorch's autocast rounds it) added by the
  // product's epilogue, for a consumer that takes bf16. False, with nothing queued, when it does
  // not apply (fp32, CPT_CUDA_EPILOGUES=0, or no algorithm): then linear() and a bias
  // kernel.
  bool linearBias(const Act* x, int N, int in, const Act* W, const Act* b, int out, Act* y) {
    return kBf16 && epilogues_ &&
           lt_.gemm(false, true, N, out, in, 1.f, Mat{x, in, 0}, Mat{W, in, 0}, 0.f, y, out, 0, 1, kAB, kAB, Epilogue{b, nullptr});
  }
  // y[N, out] = c + (x W^T + b), fp32 (c may be y): the residual stream's sum in the product's
  // epilogue (BIAS, beta 1). False, nothing queued, when it does not apply (CPT_CUDA_EPILOGUES=0).
  bool linearResidual(const Act* x, int N, int in, const Act* W, const float* b, int out, const float* c, float* y) {
    return epilogues_ &&
           lt_.gemm(false, true, N, out, in, 1.f, Mat{x, in, 0}, Mat{W, in, 0}, 1.f, y, out, 0, 1, kAB, CUDA_R_32F, Epilogue{b, nullptr}, c);
  }
  // The same, else by the product into mo_ and a residual kernel.
  void residualProduct(const Act* x, int N, int in, const Act* W, const float* b, const float* c, float* y) {
    if (linearResidual(x, N, in, W, b, d_.D, c, y)) return;
    linear(x, N, in, W, d_.D, mo_);
    const size_t ND = (size_t)N * d_.D;
    CPT_LAUNCH(residualKernel, blocksFor(ND), kThreads)(mo_, b, nullptr, nullptr, c, y, ND, d_.D);
    LAUNCH_CHECK();
  }
  // dW += dy^T x; db += the column sums of dy (dyCols: dy as the bias gradient sums it without the
  // epilogue); dx = dy W in the products' type (what PyTorch's autocast gives the gradient of a bf16
  // activation; its consumers read it once). The product's bias-gradient epilogue sums dy's columns
  // while it reads them (into db itself when the gradient is written, not added to: into part_ and
  // then added to db when it is); with CPT_CUDA_EPILOGUES=0 or no algorithm the column-sum kernels
  // read dy once more.
  template <class Y>
  void linearBack(const Act* x, const Act* dy, const Y* dyCols, int N, int in, int out, const Act* W, float* dW,
                  float* db, Act* dx) {
    const float beta = adds() ? 1.f : 0.f;
    if (epilogues_ && lt_.gemm(true, false, out, in, N, 1.f, Mat{dy, out, 0}, Mat{x, in, 0}, beta, dW, in, 0, 1, kAB, CUDA_R_32F,
                               Epilogue{nullptr, adds() ? part_ : db})) {
      if (adds()) {
        CPT_LAUNCH(reducePartialsKernel, cdiv(out, kThreads), kThreads)(part_, 1, out, db, true);
        LAUNCH_CHECK();
      }
    } else {
      lt_.gemm(true, false, out, in, N, 1.f, Mat{dy, out, 0}, Mat{x, in, 0}, beta, dW, in, 0, 1, kAB, CUDA_R_32F);
      colSumAdd(dyCols, N, out, db);
    }
    lt_.gemm(false, false, N, in, out, 1.f, Mat{dy, out, 0}, Mat{W, in, 0}, 0.f, dx, in, 0, 1, kAB, kAB);
  }
  template <class X>
  void colSumAdd(const X* x, int N, int C, float* out) {
    const int chunks = cdiv(N, kColRows);
    CPT_LAUNCH(colSumPartialsKernel<X>, dim3(cdiv(C, kThreads), chunks), kThreads)(x, N, C, kColRows, part_);
    LAUNCH_CHECK();
    CPT_LAUNCH(reducePartialsKernel, cdiv(C, kThreads), kThreads)(part_, chunks, C, out, adds());
    LAUNCH_CHECK();
  }
  void layerNorm(const float* x, const float* w, const float* b, int N, Act* y, float* mean, float* rstd) {
    CPT_LAUNCH((layerNormKernel<Act, 1>), N, kThreads, kSumSmem)(x, w, b, y, nullptr, nullptr, nullptr, mean, rstd, d_.D, (float)c_.lnEps);
    LAUNCH_CHECK();
  }
  // The parallel residual's two layer norms of x, from one read of it: ln1 into y1, ln2 into y2,
  // their shared statistics into mean and rstd.
  void layerNorms(const float* x, const LayerPtrs<float>& p, int N, Act* y1, Act* y2, float* mean, float* rstd) {
    CPT_LAUNCH((layerNormKernel<Act, 2>), N, kThreads, kSumSmem)(x, p.ln1w, p.ln1b, y1, p.ln2w, p.ln2b, y2, mean, rstd, d_.D, (float)c_.lnEps);
    LAUNCH_CHECK();
  }
  // dxAcc += LN backward; dw, db += parameter gradients. copy: dxAcc is complete after this, and
  // the products read it next: a bf16 engine writes their operand (dXT_) in the same pass.
  void layerNormBack(const float* x, const float* mean, const float* rstd, const float* w, const Act* dy, int N,
                     float* dxAcc, float* dw, float* db, bool copy) {
    CPT_LAUNCH((layerNormBackKernel<Act, 1>), N, kThreads, kSumSmem)(x, mean, rstd, w, dy, nullptr, nullptr, dxAcc, kBf16 && copy ? dXT_ : nullptr, d_.D);
    LAUNCH_CHECK();
    lnParamGrads(x, mean, rstd, dy, nullptr, N, dw, db);
  }
  // Both of the parallel residual's layer norms of x (one read of x and dX): dxAcc += the ln2 term,
  // then the ln1 term; the four parameter gradients from one more read.
  void layerNormsBack(const float* x, const float* mean, const float* rstd, const LayerPtrs<float>& p, const Act* dy1,
                      const Act* dy2, int N, float* dxAcc, const LayerPtrs<float>& gp, bool copy) {
    CPT_LAUNCH((layerNormBackKernel<Act, 2>), N, kThreads, kSumSmem)(x, mean, rstd, p.ln2w, dy2, p.ln1w, dy1, dxAcc, kBf16 && copy ? dXT_ : nullptr, d_.D);
    LAUNCH_CHECK();
    if (gp.ln2w != gp.ln1b + d_.D) throw std::logic_error("the layer norms' parameters are not adjacent");
    lnParamGrads(x, mean, rstd, dy1, dy2, N, gp.ln1w, gp.ln1b);
  }
  // dw, db (and, with dy2, the next two rows of the parameter table) += the layer norms' parameter gradients.
  void lnParamGrads(const float* x, const float* mean, const float* rstd, const Act* dy, const Act* dy2, int N, float* dw, float* db) {
    const int chunks = cdiv(N, kColRows), n = (dy2 ? 4 : 2) * d_.D;
    CPT_LAUNCH(lnParamPartialsKernel<Act>, dim3(cdiv(d_.D, kThreads), chunks), kThreads)(x, mean, rstd, dy, dy2, N, d_.D, kColRows, part_);
    LAUNCH_CHECK();
    // dw and db are adjacent in the parameter table, as the partials are: one reduction.
    if (db != dw + d_.D) throw std::logic_error("layer norm weight and bias are not adjacent");
    CPT_LAUNCH(reducePartialsKernel, cdiv(n, kThreads), kThreads)(part_, chunks, n, dw, adds());
    LAUNCH_CHECK();
  }

  // f(std::integral_constant<int, HD>{}) when the fused kernels have the head dimension hd: 32,
  // 64, 80 (Pythia-2.8b's), 128 or 256 (a multiple of 16 with an even count of 8-column tiles is
  // all they need).
  template <class F>
  static void withHeadDim(int hd, F&& f) {
    switch (hd) {
      case 32: return f(std::integral_constant<int, 32>{});
      case 64: return f(std::integral_constant<int, 64>{});
      case 80: return f(std::integral_constant<int, 80>{});
      case 128: return f(std::integral_constant<int, 128>{});
      case 256: return f(std::integral_constant<int, 256>{});
    }
  }
  // The most dynamic shared memory a block may opt into on this GPU (the fused kernels need more
  // than the default 48 KiB; allowMmaSmem says false when the GPU has too little).
  static size_t smemOptin() {
    int dev = 0;
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
    return p.sharedMemPerBlockOptin;
  }
  template <int HD>
  bool allowMmaSmem() {
    if (std::max(mmaForwardSmem(HD), mmaBackwardSmem(HD)) > smemOptin()) return false;
    CUDA_CHECK(cudaFuncSetAttribute(mmaForwardKernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)mmaForwardSmem(HD)));
    withMmaGradOut<HD>([&](auto tiles) {
      constexpr int H8 = decltype(tiles)::value;
      CUDA_CHECK(cudaFuncSetAttribute(mmaBackwardKVKernel<HD, H8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)mmaBackwardSmem(HD)));
      CUDA_CHECK(cudaFuncSetAttribute(mmaBackwardQKernel<HD, H8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)mmaBackwardSmem(HD)));
    });
    return true;
  }
  // f(std::integral_constant<int, H8>{}) for the way the mma backward's gradients go out
  // (mmaStoreGrad): H8, the rotary half in 8-column tiles, when the kernels write the
  // query/key/value gradient dqkvT_ themselves with the rotary embedding undone (a half of 8, 16 or
  // 32 dimensions inside a warp's column group: every Pythia but 2.8b); else -1, fp32 gradients
  // that mergeHeadsGradKernel undoes and merges. Only these four are built.
  template <int HD, class F>
  void withMmaGradOut(F&& f) const {
    constexpr int cols = mmaGradCols(HD);
    const int half = d_.rd / 2;
    if (half == 8) return f(std::integral_constant<int, 1>{});
    if constexpr (cols >= 32)
      if (half == 16) return f(std::integral_constant<int, 2>{});
    if constexpr (cols >= 64)
      if (half == 32) return f(std::integral_constant<int, 4>{});
    f(std::integral_constant<int, -1>{});
  }
  // withMmaGradOut's H8 for this engine (-1 without the mma attention).
  int mmaRotaryTiles() const {
    int r = -1;
    if (mma_) withHeadDim(d_.hd, [&](auto h) { withMmaGradOut<h()>([&](auto tiles) { r = decltype(tiles)::value; }); });
    return r;
  }
  template <int HD>
  void mmaForward(Acts& a, int BH, int T, float scale) {
    if constexpr (kBf16) {
      CPT_LAUNCH(mmaForwardKernel<HD>, dim3(cdiv(T, mmaQueryRows(HD)), BH), 128, mmaForwardSmem(HD))(a.q, a.k, a.v, a.y, a.lse, T, d_.H, scale);
      LAUNCH_CHECK();
    }
  }
  template <int HD>
  void mmaBackward(Acts& a, const Act* dy, int BH, int T, float scale) {
    if constexpr (kBf16) {
      rowDot(dy, a.y, BH, T, HD);
      const dim3 grid(cdiv(T, mmaKeys(HD)), BH);
      const int threads = mmaBackwardThreads(HD);
      withMmaGradOut<HD>([&](auto tiles) {
        constexpr int H8 = decltype(tiles)::value;
        CPT_LAUNCH((mmaBackwardKVKernel<HD, H8>), grid, threads, mmaBackwardSmem(HD))(a.q, a.k, a.v, dy, a.lse, rowDot_, dk_, dv_, dqkvT_,
                                                                                    cos_, sin_, T, d_.H, scale);
        LAUNCH_CHECK();
        CPT_LAUNCH((mmaBackwardQKernel<HD, H8>), grid, threads, mmaBackwardSmem(HD))(a.q, a.k, a.v, dy, a.lse, rowDot_, dq_, dqkvT_, cos_,
                                                                                   sin_, T, d_.H, scale);
        LAUNCH_CHECK();
      });
    }
  }
  // D = rowsum(dO * O) per row of the heads layout, for the fused backward; dO and O in rows [N, D].
  void rowDot(const Act* dO, const Act* O, int BH, int T, int hd) {
    const size_t rows = (size_t)BH * T;
    CPT_LAUNCH(attnRowDotKernel<Act>, cdiv(rows, 8), 256)(dO, O, rowDot_, rows, hd, T, d_.H);
    LAUNCH_CHECK();
  }

  void attentionForward(Acts& a, int B, int T) {
    const int H = d_.H, hd = d_.hd, BH = B * H;
    const float scale = (float)(1.0 / std::sqrt((double)hd));
    if (mma_) return withHeadDim(hd, [&](auto h) { mmaForward<h()>(a, BH, T, scale); });
    const long long hs = (long long)T * hd;
    for (int i0 = 0; i0 < T; i0 += rb_) {
      // Query rows [i0, i1) against keys [0, i1) (causal): S = scale * Q K^T, P = softmax(S),
      // yh = P V. Score slices are [B*H, rows, ld]: ld rounded up to 8 elements keeps every row
      // 16-byte aligned for the tensor-core kernels.
      const int i1 = std::min(T, i0 + rb_), rows = i1 - i0, ld = ldOf(i1);
      const long long ss = (long long)rows * ld;
      lt_.gemm(false, true, rows, i1, hd, scale, Mat{a.q + (size_t)i0 * hd, hd, hs}, Mat{a.k, hd, hs}, 0.f, S_, ld, ss, BH, kAB,
               CUDA_R_32F);
      if (warpSoftmax_) CPT_LAUNCH(softmaxWarpKernel<Act>, dim3(cdiv(rows, 8), BH), kThreads)(S_, P_, a.lse, rows, i1, ld, i0, T);
      else CPT_LAUNCH(softmaxKernel<Act>, dim3(rows, BH), kThreads, kSumSmem)(S_, P_, a.lse, rows, i1, ld, i0, T);
      LAUNCH_CHECK();
      lt_.gemm(false, false, rows, hd, i1, 1.f, Mat{P_, ld, ss}, Mat{a.v, hd, hs}, 0.f, a.yh + (size_t)i0 * hd, hd, hs, BH, kAB,
               kAB);
    }
  }

  // dyh_: gradient of the attention output in heads layout (dy, in rows [N, D], for the mma
  // attention) -> dq_, dk_, dv_ (fp32, heads layout), or dqkvT_ itself where the mma backward
  // writes it (mmaRotaryTiles() >= 0).
  void attentionBackward(Acts& a, const Act* dy, int B, int T) {
    const int H = d_.H, hd = d_.hd, BH = B * H;
    const float scale = (float)(1.0 / std::sqrt((double)hd));
    if (mma_) return withHeadDim(hd, [&](auto h) { mmaBackward<h()>(a, dy, BH, T, scale); });
    const long long hs = (long long)T * hd;
    CUDA_CHECK(cudaMemsetAsync(dk_, 0, (size_t)BH * hs * sizeof(float), s_));
    CUDA_CHECK(cudaMemsetAsync(dv_, 0, (size_t)BH * hs * sizeof(float), s_));
    for (int i0 = 0; i0 < T; i0 += rb_) {
      const int i1 = std::min(T, i0 + rb_), rows = i1 - i0, ld = ldOf(i1);
      const long long ss = (long long)rows * ld;
      const Act* qb = a.q + (size_t)i0 * hd;
      const Act* dyb = dyh_ + (size_t)i0 * hd;
      lt_.gemm(false, true, rows, i1, hd, scale, Mat{qb, hd, hs}, Mat{a.k, hd, hs}, 0.f, S_, ld, ss, BH, kAB, CUDA_R_32F);
      lt_.gemm(false, true, rows, i1, hd, 1.f, Mat{dyb, hd, hs}, Mat{a.v, hd, hs}, 0.f, dP_, ld, ss, BH, kAB, CUDA_R_32F);
      if (warpSoftmax_)
        CPT_LAUNCH(softmaxBackWarpKernel<Act>, dim3(cdiv(rows, 8), BH), kThreads)(S_, dP_, a.lse, P_, dS_, rows, i1, ld, i0, T, scale);
      else
        CPT_LAUNCH(softmaxBackKernel<Act>, dim3(rows, BH), kThreads, kSumSmem)(S_, dP_, a.lse, P_, dS_, rows, i1, ld, i0, T, scale);
      LAUNCH_CHECK();
      // dq rows of this block are complete here; dk and dv rows [0, i1) gather every block.
      lt_.gemm(false, false, rows, hd, i1, 1.f, Mat{dS_, ld, ss}, Mat{a.k, hd, hs}, 0.f, dq_ + (size_t)i0 * hd, hd, hs, BH,
               kAB, CUDA_R_32F);
      lt_.gemm(true, false, i1, hd, rows, 1.f, Mat{dS_, ld, ss}, Mat{qb, hd, hs}, 1.f, dk_, hd, hs, BH, kAB, CUDA_R_32F);
      lt_.gemm(true, false, i1, hd, rows, 1.f, Mat{P_, ld, ss}, Mat{dyb, hd, hs}, 1.f, dv_, hd, hs, BH, kAB, CUDA_R_32F);
    }
  }

  // One layer's forward from a.x; writes the next residual stream into out unless null.
  void layerForward(int l, int B, int T, float* out) {
    Acts& a = acts_[l];
    const int N = B * T, D = d_.D, I = d_.I, H = d_.H, hd = d_.hd;
    const LayerPtrs<float> p(w_, params, d_, l);
    const LayerPtrs<Act> pw(wT_, params, d_, l);
    if (c_.parallelResidual) layerNorms(a.x, p, N, a.ln1, a.ln2, a.mean1, a.rstd1);  // [N, D] each
    else layerNorm(a.x, p.ln1w, p.ln1b, N, a.ln1, a.mean1, a.rstd1);
    // [N, 3D] = [B, T, H, 3, hd]; + bias, rotary on the first rd dims -> q, k, v [B, H, T, hd]
    Act* qkv = reinterpret_cast<Act*>(tmp_);
    if (linearBias(a.ln1, N, D, pw.qkvw, pw.qkvb, 3 * D, qkv)) {
      CPT_LAUNCH((splitHeadsKernel<Act, Act>), blocksFor((size_t)N * D / 4), kThreads)(qkv, nullptr, cos_, sin_, a.q, a.k, a.v, N, T, H, hd, d_.rd / 2);
    } else {
      linear(a.ln1, N, D, pw.qkvw, 3 * D, tmp_);
      CPT_LAUNCH((splitHeadsKernel<float, Act>), blocksFor((size_t)N * D / 4), kThreads)(tmp_, p.qkvb, cos_, sin_, a.q, a.k, a.v, N, T, H, hd, d_.rd / 2);
    }
    LAUNCH_CHECK();
    attentionForward(a, B, T);  // yh [B, H, T, hd]; the mma attention writes y [N, D] itself
    if (!mma_) {
      CPT_LAUNCH(mergeHeadsKernel<Act>, blocksFor((size_t)N * D / 4), kThreads)(a.yh, a.y, N, T, H, hd);  // y [N, D]
      LAUNCH_CHECK();
    }
    const size_t ND = (size_t)N * D, NI = (size_t)N * I;
    if (!c_.parallelResidual) {  // x2 = x + (y Wo^T + bo)
      residualProduct(a.y, N, D, pw.ow, p.ob, a.x, a.x2);
      layerNorm(a.x2, p.ln2w, p.ln2b, N, a.ln2, a.mean2, a.rstd2);
    }
    if (linearBias(a.ln2, N, D, pw.upw, pw.upb, I, a.h1)) {        // h1 [N, I]
      CPT_LAUNCH(geluKernel<Act>, blocksFor(NI), kThreads)(a.h1, a.g, NI, c_.exactGelu);  // g [N, I]
    } else {
      linear(a.ln2, N, D, pw.upw, I, tmp_);
      CPT_LAUNCH(biasGeluKernel<Act>, blocksFor(NI), kThreads)(tmp_, p.upb, a.h1, a.g, NI, I, c_.exactGelu);
    }
    LAUNCH_CHECK();
    if (!out) return;
    if (!c_.parallelResidual) return residualProduct(a.g, N, I, pw.downw, p.downb, a.x2, out);  // out = x2 + (g Wd^T + bd)
    // Parallel: out = x + (y Wo^T + bo) + (g Wd^T + bd), in the products' epilogues or (in HF's
    // order of additions) by one kernel.
    if (linearResidual(a.y, N, D, pw.ow, p.ob, D, a.x, out)) return residualProduct(a.g, N, I, pw.downw, p.downb, out, out);
    linear(a.y, N, D, pw.ow, D, ao_);
    linear(a.g, N, I, pw.downw, D, mo_);
    CPT_LAUNCH(residualKernel, blocksFor(ND), kThreads)(ao_, p.ob, mo_, p.downb, a.x, out, ND, D);
    LAUNCH_CHECK();
  }

  // CUDA graphs (unless CPT_CUDA_GRAPHS=0): a training step of one shape and gradient scale,
  // captured on its second call (the first chose the products' algorithms outside any capture) and
  // replayed after, the launches' host work done once. Eager while a profile is on (its events
  // bracket each launch).
  struct GraphKey {
    int B = 0, T = 0;
    double gradScale = 0;
    bool acc = false;  // the step adds to the gradient (a later micro-batch) or writes it
    bool operator==(const GraphKey& o) const { return B == o.B && T == o.T && gradScale == o.gradScale && acc == o.acc; }
  };
  // One graph per kind of step: a micro-batch that writes the gradient and one that adds to it
  // (gradient accumulation alternates them).
  template <class F>
  void runStep(const GraphKey& k, F&& body) {
    if (!graphs_ || profile::active) return body();
    Slot& sl = slots_[k.acc];
    if (sl.exec && k == sl.key) {
      CUDA_CHECK(cudaGraphLaunch(sl.exec, s_));
      return;
    }
    if (!(k == sl.warm)) {
      body();
      sl.warm = k;
      return;
    }
    sl.drop();
    cudaGraph_t g = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (...) {
      cudaStreamEndCapture(s_, &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(s_, &g));
    const cudaError_t e = cudaGraphInstantiateWithFlags(&sl.exec, g, 0);
    cudaGraphDestroy(g);
    CUDA_CHECK(e);
    sl.key = k;
    CUDA_CHECK(cudaGraphLaunch(sl.exec, s_));
  }
  struct Slot {
    GraphKey key, warm;  // the captured step's, and the step run eagerly last
    cudaGraphExec_t exec = nullptr;
    void drop() {
      if (exec) cudaGraphExecDestroy(exec);
      exec = nullptr;
    }
  };
  // Before the buffers a graph names are released.
  void dropGraphs() {
    for (Slot& sl : slots_) sl.drop(), sl.warm = GraphKey{};
  }
  // Whether the backward being queued adds to the gradient (a later micro-batch) or writes it.
  bool adds() const { return !fresh_; }
  // The gradient in memory as the contract has it: zeroed where it is only zero by fresh_.
  void materialiseGrads() {
    if (!fresh_) return;
    CUDA_CHECK(cudaMemsetAsync(g_, 0, total * sizeof(float), s_));
    fresh_ = false;
  }

  void forward(const int32_t* ids, int B, int T) {
    upload(ids, B, T);
    forwardBody(B, T);
  }
  // What a step needs before its device work: buffers for [B, T], the products' copy of the
  // weights, the ids on the device.
  void upload(const int32_t* ids, int B, int T) {
    ensure(B, T);
    if (stale_) {
      if constexpr (kBf16) {
        CPT_LAUNCH(castKernel<Act>, blocksFor(total), kThreads)(w_, wT_, total);
        LAUNCH_CHECK();
      }
      stale_ = false;
    }
    // The ids go up from page-locked memory without the host waiting; the staging buffer is
    // rewritten only once the previous copy has left it.
    const int N = B * T;
    CUDA_CHECK(cudaEventSynchronize(idsCopied_));
    std::memcpy(idsHost_, ids, (size_t)N * sizeof(int32_t));
    CUDA_CHECK(cudaMemcpyAsync(ids_, idsHost_, (size_t)N * sizeof(int32_t), cudaMemcpyHostToDevice, s_));
    CUDA_CHECK(cudaEventRecord(idsCopied_, s_));
  }
  void forwardBody(int B, int T) {
    const int N = B * T;
    CPT_LAUNCH(embedKernel, N, kThreads)(ids_, w_, acts_[0].x, d_.D);
    LAUNCH_CHECK();
    for (int l = 0; l < d_.L; l++) layerForward(l, B, T, l + 1 < d_.L ? acts_[l + 1].x : xf_);
    layerNorm(xf_, lnfw_, lnfb_, N, lnf_, meanf_, rstdf_);
  }

  // Chunked LM head + cross-entropy (the [N, V] logits never exist at once). mode 0: loss;
  // 1: loss, dH_ and the head's weight gradient; 2: loss and log-probs into lp (device). Row
  // losses stay on the device (meanLoss).
  void head(int B, int T, int mode, double gradScale, float* lp) {
    const int N = B * T, D = d_.D, V = d_.V;
    const float gs = (float)(gradScale / ((double)B * (T - 1)));
    for (int r0 = 0; r0 < N; r0 += hr_) {
      const int rows = std::min(hr_, N - r0);
      const Act* Hc = lnf_ + (size_t)r0 * D;
      lt_.gemm(false, true, rows, V, D, 1.f, Mat{Hc, D, 0}, Mat{embOutT_, D, 0}, 0.f, logits_, V, 0, 1, kAB, CUDA_R_32F);
      if (mode == 1 && ceRow_)
        CPT_LAUNCH(crossEntropyRowKernel<Act>, rows, kThreads, crossEntropyRowSmem(V))(logits_, ids_, r0, T, V, gs, rowLoss_, dl_);
      else
        CPT_LAUNCH(crossEntropyKernel<Act>, rows, kThreads, kSumSmem)(logits_, ids_, r0, T, V, mode, gs, rowLoss_, lp, dl_);
      LAUNCH_CHECK();
      if (mode == 1) {
        lt_.gemm(false, false, rows, D, V, 1.f, Mat{dl_, V, 0}, Mat{embOutT_, D, 0}, 0.f, dH_ + (size_t)r0 * D, D, 0, 1, kAB, kAB);
        lt_.gemm(true, false, V, D, rows, 1.f, Mat{dl_, V, 0}, Mat{Hc, D, 0}, adds() || r0 > 0 ? 1.f : 0.f, gEmbOut_, D, 0, 1, kAB,
                 CUDA_R_32F);
      }
    }
  }
  // The mean loss of the last head(): summed on the device, one double read back (waits).
  double meanLoss(int B, int T) {
    sumLoss(B, T);
    return readLoss(B, T);
  }
  void sumLoss(int B, int T) {
    CPT_LAUNCH(sumKernel, 1, 1024, kSumSmem)(rowLoss_, B * T, lossSum_);
    LAUNCH_CHECK();
  }
  double readLoss(int B, int T) {
    double s = 0;
    CUDA_CHECK(cudaMemcpy(&s, lossSum_, sizeof s, cudaMemcpyDeviceToHost));
    return s / ((double)B * (T - 1));
  }

  void backward(int B, int T) {
    const int N = B * T, D = d_.D, I = d_.I, H = d_.H, hd = d_.hd;
    const size_t ND = (size_t)N * D;
    CUDA_CHECK(cudaMemsetAsync(dX_, 0, ND * sizeof(float), s_));
    layerNormBack(xf_, meanf_, rstdf_, lnfw_, dH_, N, dX_, glnfw_, glnfb_, true);
    // dX in the products' type: written by the layer-norm backward that completes dX.
    const Act* dXT = kBf16 ? dXT_ : reinterpret_cast<Act*>(dX_);
    for (int l = d_.L - 1; l >= 0; l--) {
      Acts& a = acts_[l];
      if (recompute_) layerForward(l, B, T, nullptr);
      const LayerPtrs<float> p(w_, params, d_, l), gp(g_, params, d_, l);
      const LayerPtrs<Act> pw(wT_, params, d_, l);
      // MLP branch: its output gradient is dX either way.
      Act* dy = reinterpret_cast<Act*>(tmp_);  // a product's output, read once right after
      linearBack(a.g, dXT, dX_, N, I, D, pw.downw, gp.downw, gp.downb, dy);
      CPT_LAUNCH(geluBackKernel<Act>, blocksFor((size_t)N * I), kThreads)(dy, a.h1, dh_, (size_t)N * I, c_.exactGelu);
      LAUNCH_CHECK();
      linearBack(a.ln2, dh_, dh_, N, D, I, pw.upw, gp.upw, gp.upb, dln2_);
      if (!c_.parallelResidual)  // dX becomes d(x2) = dX + the ln2 branch
        layerNormBack(a.x2, a.mean2, a.rstd2, p.ln2w, dln2_, N, dX_, gp.ln2w, gp.ln2b, true);
      // Attention branch.
      linearBack(a.y, dXT, dX_, N, D, D, pw.ow, gp.ow, gp.ob, dy);
      if (!mma_) {  // the mma attention reads dy as it is
        CPT_LAUNCH(splitGradKernel<Act>, blocksFor((size_t)N * D / 4), kThreads)(dy, dyh_, N, T, H, hd);
        LAUNCH_CHECK();
      }
      attentionBackward(a, dy, B, T);
      if (mmaRotaryTiles() < 0) {  // else the mma backward wrote dqkvT_
        CPT_LAUNCH(mergeHeadsGradKernel<Act>, blocksFor((size_t)N * D / 4), kThreads)(dq_, dk_, dv_, cos_, sin_, dqkvT_, N, T, H, hd, d_.rd / 2);
        LAUNCH_CHECK();
      }
      linearBack(a.ln1, dqkvT_, dqkvT_, N, D, 3 * D, pw.qkvw, gp.qkvw, gp.qkvb, dln1_);
      // dX is complete: the next layer's products read its copy (the embedding's backward reads fp32)
      if (c_.parallelResidual) layerNormsBack(a.x, a.mean1, a.rstd1, p, dln1_, dln2_, N, dX_, gp, l > 0);
      else layerNormBack(a.x, a.mean1, a.rstd1, p.ln1w, dln1_, N, dX_, gp.ln1w, gp.ln1b, l > 0);
    }
    // Embedding gradient: rows sorted by token on the device (stable), each token's rows added
    // in order.
    const int tiles = cdiv(N, st_);
    const size_t smem = st_ * sizeof(int32_t);
    const int32_t *keys = ids_, *rows = nullptr;
    for (int shift = 0, i = 0; shift == 0 || (shift < 32 && (d_.V - 1) >> shift); shift += 8, i ^= 1) {
      CPT_LAUNCH(radixCountKernel, tiles, kRadix, smem)(keys, N, st_, shift, sortCounts_);
      LAUNCH_CHECK();
      CPT_LAUNCH(exclusiveScanKernel, 1, 1024, 1024 * sizeof(int32_t))(sortCounts_, kRadix * tiles);
      LAUNCH_CHECK();
      CPT_LAUNCH(radixScatterKernel, tiles, kRadix, smem)(keys, rows, N, st_, shift, sortCounts_, sortKeys_[i], sortRows_[i]);
      LAUNCH_CHECK();
      keys = sortKeys_[i], rows = sortRows_[i];
    }
    // Tokens absent from the batch keep their rows: zero when this backward writes the gradient
    // (a tied head has written every row already).
    if (!adds() && !c_.tied) CUDA_CHECK(cudaMemsetAsync(g_, 0, (size_t)d_.V * D * sizeof(float), s_));
    CPT_LAUNCH(embedBackKernel, N, kThreads)(keys, rows, N, dX_, g_, D);
    LAUNCH_CHECK();
  }

  ModelConfig c_;
  Dims d_;
  bool recompute_, stale_ = true, mma_ = false, ceRow_ = false, graphs_ = envChoice("CPT_CUDA_GRAPHS", {"1", "0"}) == "1",
       epilogues_ = envChoice("CPT_CUDA_EPILOGUES", {"1", "0"}) == "1",
       warpSoftmax_ = envChoice("CPT_CUDA_SOFTMAX", {"block", "warp"}) == "warp";
  cudaStream_t s_ = nullptr;
  Slot slots_[2];
  // fresh_: the gradient is zero (after an update or zeroGrads) without its memory being so; the
  // next backward writes it (products with beta 0, sums stored) instead of adding: see adds().
  bool fresh_ = true;
  Lt lt_;
  Arena fixed_, act_;
  float *w_, *g_, *m_, *v_;
  Act* wT_;
  double *normPart_, *normSq_, *lossSum_;
  cudaEvent_t idsCopied_ = nullptr;
  AdamChunk* chunks_;
  int adamChunks_ = 0;
  float *lnfw_, *lnfb_, *glnfw_, *glnfb_, *gEmbOut_;
  Act* embOutT_;
  int curB_ = 0, curT_ = 0, rb_ = 0, hr_ = 0, st_ = 0;
  std::vector<Acts> acts_;
  float *xf_, *meanf_, *rstdf_, *tmp_, *ao_, *mo_, *dX_, *dq_, *dk_, *dv_, *part_, *S_, *dP_, *rowDot_;
  float *logits_, *cos_, *sin_, *dOut_;
  Act *lnf_, *dXT_, *dH_, *dln1_, *dln2_, *dh_, *dyh_, *dqkvT_, *P_, *dS_, *dl_;
  double* rowLoss_;
  int32_t *ids_, *lengths_, *sortKeys_[2], *sortRows_[2], *sortCounts_, *idsHost_ = nullptr;
  float* lp_ = nullptr;
  size_t lpCap_ = 0;

 public:
  ~Engine() override {
    dropGraphs();
    if (lp_) cudaFree(lp_);
    cudaFreeHost(idsHost_);
    cudaEventDestroy(idsCopied_);
    cudaStreamDestroy(s_);
  }
};

}  // namespace cuda
}  // namespace cpt

// ---- C API ----

struct CptCudaEngine {
  std::unique_ptr<cpt::cuda::EngineBase> e;
  std::string device;
};

namespace {
thread_local std::string lastError;

template <class F>
int guard(F f) {
  try {
    f();
    return 0;
  } catch (const std::exception& ex) {
    lastError = ex.what();
  } catch (...) {
    lastError = "unknown error in the CUDA engine";
  }
  return -1;
}

std::string probe(int device) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    // No driver at all reads as "insufficient driver": say what would fix it.
    // The driver this build's runtime needs: CUDA 13 needs R580; 11.8 runs from R450 (minor
    // version compatibility), natively from R520.
    const std::string needs = CUDART_VERSION >= 13000 ? "R580 or newer (CUDA 13)" : "R520 or newer (CUDA 11.8; R450 works without PTX JIT)";
    const std::string hint = e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                                 ? "; this needs an NVIDIA GPU with its driver, " + needs
                                 : "";
    throw std::runtime_error(std::string("no CUDA device was found (") +
                             (e == cudaSuccess ? "the driver reports 0 devices" : cudaGetErrorString(e)) + ")" + hint);
  }
  if (device < 0 || device >= n)
    throw std::runtime_error("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                             " found)");
  cudaDeviceProp p;
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  if (p.major < 8)
    throw std::runtime_error(std::string(p.name) + " has compute capability " + std::to_string(p.major) + "." +
                             std::to_string(p.minor) + "; the CUDA engine needs 8.0 (Ampere) or newer");
  std::string why;
  if (cpt::cuda::cublasLtLocation(&why).empty()) throw std::runtime_error(why);
  return p.name;
}
}  // namespace

extern "C" {

int cpt_cuda_abi(void) { return CPT_CUDA_ABI; }
const char* cpt_cuda_error(void) { return lastError.c_str(); }

int cpt_cuda_probe(int device, char* name, size_t len) {
  return guard([&] {
    const std::string n = probe(device);
    if (name && len) std::snprintf(name, len, "%s", n.c_str());
  });
}

int cpt_cuda_describe(int device, char* out, size_t len) {
  std::string s;
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  s += "cuda_driver_version=" + std::to_string(drv) + "\ncuda_runtime_version=" + std::to_string(rt) + "\n";
  std::string why;
  const std::string lt = cpt::cuda::cublasLtLocation(&why);
  s += lt.empty() ? "cublaslt_error=" + why + "\n" : "cublaslt=" + lt + "\ncublaslt_version=" + std::to_string(cublasLtGetVersion()) + "\n";
  const int rc = guard([&] {
    probe(device);
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    s += std::string("gpu_name=") + p.name + "\ngpu_cc=" + std::to_string(p.major) + "." + std::to_string(p.minor) +
         "\ngpu_sms=" + std::to_string(p.multiProcessorCount) + "\ngpu_mem_mib=" + std::to_string(p.totalGlobalMem >> 20) +
         "\n";
  });
  if (rc != 0) s += "probe_error=" + lastError + "\n";
  if (out && len) std::snprintf(out, len, "%s", s.c_str());
  return rc;
}

CptCudaEngine* cpt_cuda_create(const CptCudaConfig* c, const CptCudaOptions* o) {
  CptCudaEngine* r = nullptr;
  guard([&] {
    const std::string name = probe(o->device);
    CUDA_CHECK(cudaSetDevice(o->device));
    cpt::ModelConfig m;
    m.hidden = c->hidden, m.layers = c->layers, m.heads = c->heads, m.inter = c->inter, m.vocab = c->vocab;
    m.rotaryPct = c->rotaryPct, m.rotaryBase = c->rotaryBase, m.lnEps = c->lnEps;
    m.exactGelu = c->exactGelu, m.parallelResidual = c->parallelResidual, m.tied = c->tied;
    auto h = std::make_unique<CptCudaEngine>();
    if (o->bf16) h->e = std::make_unique<cpt::cuda::Engine<__nv_bfloat16>>(m, o->recompute != 0);
    else h->e = std::make_unique<cpt::cuda::Engine<float>>(m, o->recompute != 0);
    h->device = name;
    r = h.release();
  });
  return r;
}

void cpt_cuda_destroy(CptCudaEngine* e) { delete e; }
const char* cpt_cuda_device_name(const CptCudaEngine* e) { return e->device.c_str(); }
int cpt_cuda_num_params(const CptCudaEngine* e) { return (int)e->e->params.size(); }
const char* cpt_cuda_param_name(const CptCudaEngine* e, int i) { return e->e->params[i].name.c_str(); }
size_t cpt_cuda_param_size(const CptCudaEngine* e, int i) { return e->e->params[i].size; }

int cpt_cuda_set_tensor(CptCudaEngine* e, int which, int i, const float* data) {
  return guard([&] {
    if (i < 0 || i >= (int)e->e->params.size()) throw std::invalid_argument("bad tensor index");
    e->e->setTensor(which, i, data);
  });
}
int cpt_cuda_get_tensor(CptCudaEngine* e, int which, int i, float* out) {
  return guard([&] {
    if (i < 0 || i >= (int)e->e->params.size()) throw std::invalid_argument("bad tensor index");
    e->e->getTensor(which, i, out);
  });
}
int64_t cpt_cuda_get_step(const CptCudaEngine* e) { return e->e->step; }
void cpt_cuda_set_step(CptCudaEngine* e, int64_t step) { e->e->step = step; }

// The batch operations of ops.h: OUT ones fill `out`, LOSS ones store the loss in `*out`.
#define CPT_CALL_OUT(method, args) e->e->method(ids, B, T CPT_UNPAREN args, out)
#define CPT_CALL_LOSS(method, args) *out = e->e->method(ids, B, T CPT_UNPAREN args)
#define CPT_DEFINE_OP(method, c_name, result, out_elems, params, args, js_args) \
  CPT_OP_C_SIGNATURE(c_name, result, params) {                                  \
    return guard([&] { CPT_CALL_##result(method, args); });                    \
  }
CPT_OPS(CPT_DEFINE_OP)
#undef CPT_DEFINE_OP
#undef CPT_CALL_OUT
#undef CPT_CALL_LOSS
void cpt_cuda_profile_start(void) { cpt::cuda::profile::start(); }
int cpt_cuda_profile_stop(char* out, size_t len) {
  int need = -1;
  guard([&] {
    const std::string s = cpt::cuda::profile::stop();
    if (out && len) std::snprintf(out, len, "%s", s.c_str());
    need = (int)s.size() + 1;
  });
  return need;
}
int cpt_cuda_zero_grads(CptCudaEngine* e) {
  return guard([&] { e->e->zeroGrads(); });
}
int cpt_cuda_adamw(CptCudaEngine* e, double lr, double beta1, double beta2, double eps, double weightDecay, double clip,
                   double* gradNorm) {
  return guard([&] { *gradNorm = e->e->adamw(cpt::AdamW{lr, beta1, beta2, eps, weightDecay, clip}); });
}

}  // extern "C"
