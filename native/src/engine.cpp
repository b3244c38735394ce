#include "engine.h"

#include "bf16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace cpt {

namespace {
constexpr int RB = 64;  // attention row block: causal blocks skip the masked upper triangle

template <class V>
void grow(V& v, size_t n) {
  if (v.size() != n) v.resize(n);
}
}  // namespace

Engine::Engine(const ModelConfig& c, int threads, const char* kernel, const char* bf16)
    : c_(c), pool_(threads < 1 ? 1 : threads), gemm_(selectKernel(kernel) ? selectKernel(kernel) : kernelScalar(),
                                                     threads < 1 ? 1 : threads,
                                                     bf16 && *bf16 ? bf16::select(bf16) : bf16::Path::none) {
  if (!selectKernel(kernel))
    throw std::invalid_argument(std::string("kernel \"") + (kernel ? kernel : "") +
                                "\" is unknown or not supported by this CPU (auto, scalar, avx2, avx512)");
  const Dims d = validate(c);
  D_ = d.D, H_ = d.H, hd_ = d.hd, rd_ = d.rd, I_ = d.I, V_ = d.V, L_ = d.L;
  params_ = paramTable(c, &total_);
  w_.assign(total_, 0.f);
  const size_t lnf = params_[1 + 12 * L_].offset;
  embIn_ = w_.data();
  lnfw_ = w_.data() + lnf, lnfb_ = lnfw_ + D_;
  embOut_ = c.tied ? embIn_ : w_.data() + params_.back().offset;
  scratch_.resize(pool_.size());
  partial_.resize(pool_.size());
  attnB_ = std::vector<PackedB>((size_t)3 * pool_.size());
  acts_.resize(L_);
}

Engine::~Engine() = default;

void Engine::ensureTrainState() {
  if (!g_.empty()) return;
  g_.assign(total_, 0.f);
  m_.assign(total_, 0.f);
  v_.assign(total_, 0.f);
  const size_t lnf = params_[1 + 12 * L_].offset;
  gEmbIn_ = g_.data(), glnfw_ = g_.data() + lnf, glnfb_ = glnfw_ + D_;
  gEmbOut_ = c_.tied ? gEmbIn_ : g_.data() + params_.back().offset;
}

Engine::LayerP Engine::layer(float* base, int l) const {
  return LayerP(base, params_, Dims{D_, H_, hd_, rd_, I_, V_, L_}, l);
}

void Engine::ropeTables(int T) {
  if (ropeT_ == T) return;
  cpt::ropeTables(c_, rd_, T, cos_, sin_);
  ropeT_ = T;
}

void Engine::ensure(int B, int T, bool training) {
  ropeTables(T);
  const size_t N = (size_t)B * T;
  const auto fill = [&](Acts& a) {
    grow(a.x, N * D_), grow(a.ln1, N * D_), grow(a.ln1mean, N), grow(a.ln1rstd, N);
    grow(a.qkv, N * 3 * D_), grow(a.lse, (size_t)B * H_ * T), grow(a.y, N * D_);
    if (!c_.parallelResidual) grow(a.x2, N * D_);
    grow(a.ln2, N * D_), grow(a.ln2mean, N), grow(a.ln2rstd, N), grow(a.h1, N * I_), grow(a.g, N * I_);
  };
  if (B != curB_ || T != curT_) {
    curB_ = curT_ = 0, allLayers_ = false;  // until the buffers below exist
    fill(acts_[0]);
    grow(xAlt_, N * D_), grow(xf_, N * D_), grow(lnf_, N * D_), grow(lnfmean_, N), grow(lnfrstd_, N);
    grow(ao_, N * D_), grow(mo_, N * D_), grow(rowLoss_, N);
    for (auto& s : scratch_) grow(s, (size_t)2 * T * T);
    curB_ = B, curT_ = T;
  }
  if (training && !allLayers_) {
    for (int l = 1; l < L_; l++) fill(acts_[l]);
    grow(dX_, N * D_), grow(dH_, N * D_), grow(dy_, N * D_), grow(dqkv_, N * 3 * D_), grow(dh1_, N * I_);
    grow(dln1_, N * D_), grow(dln2_, N * D_);
    allLayers_ = true;
  }
}

// y[N, out] = x[N, in] W[out, in]^T + b
void Engine::linear(const float* x, int N, int in, const float* b, int out, float* y, const PackedB& pw) {
  gemm_.mtPacked(pool_, false, N, x, in, pw, y, out, false, false, b);
}

void Engine::packLayers() {
  if (layerW_.size() != (size_t)4 * L_) layerW_ = std::vector<PackedB>((size_t)4 * L_);
  for (int l = 0; l < L_; l++) {
    const LayerP p = layer(w_.data(), l);
    PackedB* pw = &layerW_[(size_t)4 * l];
    gemm_.packAll(pool_, true, D_, 3 * D_, p.qkvw, D_, pw[0]);
    gemm_.packAll(pool_, true, D_, D_, p.ow, D_, pw[1]);
    gemm_.packAll(pool_, true, D_, I_, p.upw, D_, pw[2]);
    gemm_.packAll(pool_, true, I_, D_, p.downw, I_, pw[3]);
  }
  layersPacked_ = true;
}

void Engine::colSumAdd(const float* x, int N, int C, float* out) {
  const int nt = pool_.size();
  pool_.run([&](int tid) {
    auto& p = partial_[tid];
    p.assign(C, 0.0);
    const int64_t r0 = (int64_t)N * tid / nt, r1 = (int64_t)N * (tid + 1) / nt;
    for (int64_t r = r0; r < r1; r++) {
      const float* row = x + r * C;
      for (int j = 0; j < C; j++) p[j] += row[j];
    }
  });
  for (int t = 0; t < nt; t++)
    for (int j = 0; j < C; j++) out[j] += (float)partial_[t][j];
}

void Engine::linearBackward(const float* x, const float* dy, int N, int in, int out, const float* W, float* dW,
                            float* db, float* dx) {
  gemm_.mt(pool_, true, false, out, in, N, dy, out, x, in, dW, in, true);  // dW += dy^T x
  colSumAdd(dy, N, out, db);
  gemm_.mt(pool_, false, false, N, in, out, dy, out, W, in, dx, in, false);  // dx = dy W
}

void Engine::layerNorm(const float* x, const float* w, const float* b, int N, float* y, float* mean, float* rstd) {
  const int D = D_;
  const float eps = (float)c_.lnEps;
  const Kernel* kn = gemm_.kernel();
  pool_.parallelFor(N, [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) kn->layerNorm(x + r * D, w, b, y + r * D, D, eps, mean + r, rstd + r);
  });
}

void Engine::layerNormBackward(const float* x, const float* mean, const float* rstd, const float* w,
                               const float* dy, int N, float* dxAcc, float* dw, float* db) {
  const int D = D_, nt = pool_.size();
  pool_.run([&](int tid) {
    auto& p = partial_[tid];
    p.assign(2 * D, 0.0);
    const int64_t r0 = (int64_t)N * tid / nt, r1 = (int64_t)N * (tid + 1) / nt;
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * D;
      const float* g = dy + r * D;
      const float m = mean[r], rs = rstd[r];
      double s1 = 0, s2 = 0;
      for (int j = 0; j < D; j++) {
        const float xh = (xr[j] - m) * rs, dxh = g[j] * w[j];
        s1 += dxh, s2 += dxh * xh;
        p[j] += g[j] * xh;
        p[D + j] += g[j];
      }
      const float a = (float)(s1 / D), bb = (float)(s2 / D);
      float* o = dxAcc + r * D;
      for (int j = 0; j < D; j++) {
        const float xh = (xr[j] - m) * rs;
        o[j] += rs * (g[j] * w[j] - a - xh * bb);
      }
    }
  });
  for (int t = 0; t < nt; t++)
    for (int j = 0; j < D; j++) dw[j] += (float)partial_[t][j], db[j] += (float)partial_[t][D + j];
}

static inline void rope(float* z, const float* cs, const float* sn, int half, bool inverse) {
  for (int i = 0; i < half; i++) {
    const float a = z[i], b = z[i + half], c = cs[i], s = inverse ? -sn[i] : sn[i];
    z[i] = a * c - b * s;
    z[i + half] = b * c + a * s;
  }
}

void Engine::attentionForward(Acts& a, int B, int T) {
  const int H = H_, hd = hd_, D3 = 3 * D_, half = rd_ / 2;
  const float scale = (float)(1.0 / std::sqrt((double)hd));
  if (half > 0)
    pool_.parallelFor((int64_t)B * T, [&](int, int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const int t = (int)(r % T);
        for (int h = 0; h < H; h++) {
          float* q = a.qkv.data() + r * D3 + h * 3 * hd;
          rope(q, &cos_[(size_t)t * half], &sin_[(size_t)t * half], half, false);
          rope(q + hd, &cos_[(size_t)t * half], &sin_[(size_t)t * half], half, false);
        }
      }
    });
  pool_.parallelFor((int64_t)B * H, [&](int tid, int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; w++) {
      const int b = (int)(w / H), h = (int)(w % H);
      const float* q = a.qkv.data() + (size_t)b * T * D3 + h * 3 * hd;
      const float* k = q + hd;
      const float* v = q + 2 * hd;
      // Probabilities live in per-thread scratch; only each row's log-sum-exp is kept for the
      // backward pass, which recomputes them (memory O(T) per head instead of O(T^2)).
      float* P = scratch_[tid].data();
      float* lse = a.lse.data() + (size_t)w * T;
      float* y = a.y.data() + (size_t)b * T * D_ + h * hd;
      // K^T and V packed once per head, each query block using a prefix of them.
      PackedB* pk = &attnB_[3 * tid];
      gemm_.packOne(true, hd, T, k, D3, pk[0]), gemm_.packOne(false, T, hd, v, D3, pk[1]);
      for (int i0 = 0; i0 < T; i0 += RB) {
        const int i1 = std::min(T, i0 + RB);
        gemm_.stPrefix(tid, i1 - i0, i1, hd, q + (size_t)i0 * D3, D3, pk[0], P + (size_t)i0 * T, T);
        const Kernel* kn = gemm_.kernel();
        for (int i = i0; i < i1; i++) {
          float* row = P + (size_t)i * T;
          for (int j = 0; j <= i; j++) row[j] *= scale;
          const float mx = kn->rowMax(row, i + 1), sum = kn->expSum(row, i + 1, mx, 1), inv = 1.f / sum;
          lse[i] = mx + std::log(sum);
          for (int j = 0; j <= i; j++) row[j] *= inv;
          for (int j = i + 1; j < i1; j++) row[j] = 0.f;
        }
        gemm_.stPrefix(tid, i1 - i0, hd, i1, P + (size_t)i0 * T, T, pk[1], y + (size_t)i0 * D_, D_);
      }
    }
  });
}

void Engine::attentionBackward(Acts& a, int B, int T, const float* dyAll, float* dqkv) {
  const int H = H_, hd = hd_, D3 = 3 * D_, half = rd_ / 2;
  const float scale = (float)(1.0 / std::sqrt((double)hd));
  pool_.parallelFor((int64_t)B * H, [&](int tid, int64_t w0, int64_t w1) {
    float* Pbuf = scratch_[tid].data();
    float* dP = Pbuf + (size_t)T * T;
    const Kernel* kn = gemm_.kernel();
    for (int64_t w = w0; w < w1; w++) {
      const int b = (int)(w / H), h = (int)(w % H);
      const size_t base = (size_t)b * T * D3 + h * 3 * hd;
      const float* q = a.qkv.data() + base;
      const float* k = q + hd;
      const float* v = q + 2 * hd;
      float* dq = dqkv + base;
      float* dk = dq + hd;
      float* dv = dq + 2 * hd;
      const float* lse = a.lse.data() + (size_t)w * T;
      const float* dy = dyAll + (size_t)b * T * D_ + h * hd;
      float* P = Pbuf;
      // K^T, V^T and K packed once per head, each query block using a prefix of them.
      PackedB* pk = &attnB_[3 * tid];
      gemm_.packOne(true, hd, T, k, D3, pk[0]), gemm_.packOne(true, hd, T, v, D3, pk[1]),
          gemm_.packOne(false, T, hd, k, D3, pk[2]);
      for (int i0 = 0; i0 < T; i0 += RB) {
        const int i1 = std::min(T, i0 + RB);
        gemm_.stPrefix(tid, i1 - i0, i1, hd, q + (size_t)i0 * D3, D3, pk[0], P + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++) {  // recompute the probabilities from the saved log-sum-exp
          float* row = P + (size_t)i * T;
          for (int j = 0; j <= i; j++) row[j] *= scale;
          kn->expSum(row, i + 1, lse[i], 1);
          for (int j = i + 1; j < i1; j++) row[j] = 0.f;
        }
        gemm_.stPrefix(tid, i1 - i0, i1, hd, dy + (size_t)i0 * D_, D_, pk[1], dP + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++) {
          const float* p = P + (size_t)i * T;
          float* d = dP + (size_t)i * T;
          float dot = 0;
          for (int j = 0; j <= i; j++) dot += p[j] * d[j];
          for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - dot) * scale;
          for (int j = i + 1; j < i1; j++) d[j] = 0.f;
        }
        gemm_.stPrefix(tid, i1 - i0, hd, i1, dP + (size_t)i0 * T, T, pk[2], dq + (size_t)i0 * D3, D3);
      }
      for (int j0 = 0; j0 < T; j0 += RB) {
        const int j1 = std::min(T, j0 + RB);
        const size_t off = (size_t)j0 * T + j0;
        gemm_.st(tid, true, false, j1 - j0, hd, T - j0, P + off, T, dy + (size_t)j0 * D_, D_, dv + (size_t)j0 * D3, D3,
                 false);
        gemm_.st(tid, true, false, j1 - j0, hd, T - j0, dP + off, T, q + (size_t)j0 * D3, D3, dk + (size_t)j0 * D3, D3,
                 false);
      }
    }
  });
  if (half > 0)
    pool_.parallelFor((int64_t)B * T, [&](int, int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const int t = (int)(r % T);
        for (int h = 0; h < H; h++) {
          float* d = dqkv + r * D3 + h * 3 * hd;
          rope(d, &cos_[(size_t)t * half], &sin_[(size_t)t * half], half, true);
          rope(d + hd, &cos_[(size_t)t * half], &sin_[(size_t)t * half], half, true);
        }
      }
    });
}

void Engine::forward(const int32_t* ids, int B, int T, bool training) {
  ensure(B, T, training);
  if (!layersPacked_) packLayers();
  const int N = B * T, D = D_;
  float* x0 = acts_[0].x.data();  // [N, D] = embed_in[ids]
  pool_.parallelFor(N, [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) std::memcpy(x0 + r * D, embIn_ + (size_t)ids[r] * D, sizeof(float) * D);
  });
  for (int l = 0; l < L_; l++) {
    // Training keeps every layer's activations for backward; scoring reuses the first layer's,
    // the residual stream alternating between its x and xAlt_.
    Acts& a = acts_[training ? l : 0];
    const LayerP p = layer(w_.data(), l);
    const PackedB* pw = &layerW_[(size_t)4 * l];
    const float* xin = training || l % 2 == 0 ? a.x.data() : xAlt_.data();            // [N, D] this layer's input
    float* xn = l + 1 == L_ ? xf_.data() : training ? acts_[l + 1].x.data() : l % 2 == 0 ? xAlt_.data() : a.x.data();
    layerNorm(xin, p.ln1w, p.ln1b, N, a.ln1.data(), a.ln1mean.data(), a.ln1rstd.data());
    linear(a.ln1.data(), N, D, p.qkvb, 3 * D, a.qkv.data(), pw[0]);  // [N, D] -> [N, 3D]
    attentionForward(a, B, T);                                                       // [N, 3D] -> [N, D]
    linear(a.y.data(), N, D, p.ob, D, ao_.data(), pw[1]);            // [N, D]
    const float* lnIn = xin;
    if (!c_.parallelResidual) {
      pool_.parallelFor((int64_t)N * D, [&](int, int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) a.x2[i] = ao_[i] + xin[i];
      });
      lnIn = a.x2.data();
    }
    layerNorm(lnIn, p.ln2w, p.ln2b, N, a.ln2.data(), a.ln2mean.data(), a.ln2rstd.data());
    linear(a.ln2.data(), N, D, p.upb, I_, a.h1.data(), pw[2]);       // [N, D] -> [N, I]
    const Kernel* kn = gemm_.kernel();
    pool_.parallelFor((int64_t)N * I_, [&](int, int64_t i0, int64_t i1) {
      kn->gelu(a.h1.data() + i0, a.g.data() + i0, i1 - i0, c_.exactGelu);
    });
    linear(a.g.data(), N, I_, p.downb, D, mo_.data(), pw[3]);         // [N, I] -> [N, D]
    pool_.parallelFor((int64_t)N * D, [&](int, int64_t i0, int64_t i1) {
      if (c_.parallelResidual)
        for (int64_t i = i0; i < i1; i++) xn[i] = mo_[i] + ao_[i] + xin[i];  // HF order
      else
        for (int64_t i = i0; i < i1; i++) xn[i] = mo_[i] + a.x2[i];
    });
  }
  layerNorm(xf_.data(), lnfw_, lnfb_, N, lnf_.data(), lnfmean_.data(), lnfrstd_.data());  // [N, D], the head's input
}

void Engine::backward(const int32_t* ids, int B, int T) {
  const int N = B * T, D = D_;
  std::fill(dX_.begin(), dX_.end(), 0.f);
  layerNormBackward(xf_.data(), lnfmean_.data(), lnfrstd_.data(), lnfw_, dH_.data(), N, dX_.data(), glnfw_, glnfb_);
  for (int l = L_ - 1; l >= 0; l--) {
    Acts& a = acts_[l];
    const LayerP p = layer(w_.data(), l), gp = layer(g_.data(), l);
    // MLP branch: its output gradient is dX either way.
    linearBackward(a.g.data(), dX_.data(), N, I_, D, p.downw, gp.downw, gp.downb, dh1_.data());
    const Kernel* kn = gemm_.kernel();
    pool_.parallelFor((int64_t)N * I_, [&](int, int64_t i0, int64_t i1) {
      kn->geluBack(a.h1.data() + i0, dh1_.data() + i0, i1 - i0, c_.exactGelu);
    });
    linearBackward(a.ln2.data(), dh1_.data(), N, D, I_, p.upw, gp.upw, gp.upb, dln2_.data());
    if (!c_.parallelResidual)  // dX becomes d(x2) = dX + ln2 branch
      layerNormBackward(a.x2.data(), a.ln2mean.data(), a.ln2rstd.data(), p.ln2w, dln2_.data(), N, dX_.data(), gp.ln2w,
                        gp.ln2b);
    // Attention branch.
    linearBackward(a.y.data(), dX_.data(), N, D, D, p.ow, gp.ow, gp.ob, dy_.data());
    attentionBackward(a, B, T, dy_.data(), dqkv_.data());
    linearBackward(a.ln1.data(), dqkv_.data(), N, D, 3 * D, p.qkvw, gp.qkvw, gp.qkvb, dln1_.data());
    if (c_.parallelResidual)
      layerNormBackward(a.x.data(), a.ln2mean.data(), a.ln2rstd.data(), p.ln2w, dln2_.data(), N, dX_.data(), gp.ln2w,
                        gp.ln2b);
    layerNormBackward(a.x.data(), a.ln1mean.data(), a.ln1rstd.data(), p.ln1w, dln1_.data(), N, dX_.data(), gp.ln1w,
                      gp.ln1b);
  }
  // Embedding gradient: each thread owns a column slice, rows in order (deterministic).
  pool_.parallelFor(D, [&](int, int64_t c0, int64_t c1) {
    for (int r = 0; r < N; r++) {
      float* dst = gEmbIn_ + (size_t)ids[r] * D;
      const float* src = dX_.data() + (size_t)r * D;
      for (int64_t j = c0; j < c1; j++) dst[j] += src[j];
    }
  });
}

// The LM head and cross-entropy. mode 0: loss; 1: loss, dH and the head's weight gradient; 2:
// loss and log p(target) into out. Scoring (0, 2) never holds more than a [kHeadRows, kHeadBlock]
// tile of logits per thread (512 KiB, in L2): each row's log-sum-exp is merged block by block in
// vocabulary order (the same for any thread count) and its target's logit taken from its block.
// Training (1) needs every logit of a row for the gradient, so it fills [rows, V] chunks.
double Engine::headLoss(const int32_t* ids, int B, int T, int mode, double gradScale, float* out) {
  constexpr int kHeadBlock = 1024, kHeadRows = 128;
  const int N = B * T, D = D_, V = V_, nb = (V + kHeadBlock - 1) / kHeadBlock;
  // The head weight is packed once per model when scoring and once per optimizer step when
  // training (weights() and AdamW mark it stale), not per call or row chunk.
  if (!headPacked_) {
    if ((int)headBlocks_.size() != nb) headBlocks_ = std::vector<PackedB>(nb);
    for (int b = 0; b < nb; b++) {
      const int j0 = b * kHeadBlock;
      gemm_.packAll(pool_, true, D, std::min(kHeadBlock, V - j0), embOut_ + (size_t)j0 * D, D, headBlocks_[b]);
    }
    headPacked_ = true;
  }
  const Kernel* kn = gemm_.kernel();
  if (mode != 1) {
    // One parallel region: each thread prepares its share of the rows once (split at multiples
    // of 32) and goes through the vocabulary block by block, each block against its rows by
    // tiles of kHeadRows (the block's packed weight stays in cache across them).
    grow(rowLse_, (size_t)N);
    grow(rowTarget_, (size_t)N);
    const int nt = pool_.size(), units = (N + 31) / 32;
    if ((int)headRows_.size() != nt) headRows_ = std::vector<PackedA>(nt), headTiles_ = std::vector<AlignedBuf>(nt);
    pool_.run([&](int tid) {
      const int r0 = std::min(N, (int)((int64_t)units * tid / nt) * 32);
      const int r1 = std::min(N, (int)((int64_t)units * (tid + 1) / nt) * 32);
      if (r0 >= r1) return;
      PackedA& rows = headRows_[tid];
      gemm_.packRows(lnf_.data() + (size_t)r0 * D, D, r1 - r0, D, rows);
      float* tile = headTiles_[tid].get((size_t)kHeadRows * kHeadBlock);
      for (int b = 0; b < nb; b++) {
        const int j0 = b * kHeadBlock, w = std::min(kHeadBlock, V - j0);
        for (int s0 = 0; s0 < r1 - r0; s0 += kHeadRows) {
          const int s1 = std::min(r1 - r0, s0 + kHeadRows);
          gemm_.stPacked(tid, rows, s0, s1, headBlocks_[b], tile, w);
          for (int i = 0; i < s1 - s0; i++) {
            const int r = r0 + s0 + i;
            if (r % T == T - 1) continue;  // predicts nothing
            const float* l = tile + (size_t)i * w;
            const double lb = kn->logSumExp(l, w);
            double& run = rowLse_[r];
            if (b == 0) run = lb;
            else {
              const double m = std::max(run, lb);
              run = m + std::log(std::exp(run - m) + std::exp(lb - m));
            }
            const int tgt = ids[r + 1];
            if (tgt >= j0 && tgt < j0 + w) rowTarget_[r] = l[tgt - j0];
          }
        }
      }
    });
    for (int r = 0; r < N; r++) {
      const int t = r % T;
      if (t == T - 1) {
        rowLoss_[r] = 0;
        continue;
      }
      const double lse = rowLse_[r], lt = rowTarget_[r];
      rowLoss_[r] = lse - lt;
      if (mode == 2) out[(size_t)(r / T) * (T - 1) + t] = (float)(lt - lse);
    }
  } else {
    int R = std::max(16, (int)((size_t)(1 << 24) / (size_t)V));
    R = std::min(R, N);
    grow(logitBuf_, (size_t)R * V);
    float* lg = logitBuf_.data();
    const float gs = (float)(gradScale / ((double)B * (T - 1)));
    if (!headNNPacked_) gemm_.packAll(pool_, false, V, D, embOut_, D, head_), headNNPacked_ = true;
    for (int r0 = 0; r0 < N; r0 += R) {
      const int rows = std::min(R, N - r0);
      const float* Hc = lnf_.data() + (size_t)r0 * D;
      for (int b = 0; b < nb; b++) {
        const int j0 = b * kHeadBlock;
        gemm_.mtPacked(pool_, false, rows, Hc, D, headBlocks_[b], lg + j0, V, false, b > 0);
      }
      pool_.parallelFor(rows, [&](int, int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) {
          const int r = r0 + (int)i, t = r % T;
          float* l = lg + i * V;
          if (t == T - 1) {
            rowLoss_[r] = 0;
            std::memset(l, 0, sizeof(float) * V);
            continue;
          }
          const int tgt = ids[r + 1];
          const float lt = l[tgt];
          const float flse = kn->logSumExp(l, V);
          rowLoss_[r] = (double)flse - lt;
          // (softmax - onehot) times the loss scale, in one pass
          kn->expSum(l, V, flse, 1);
          for (int j = 0; j < V; j++) l[j] *= gs;
          l[tgt] -= gs;
        }
      });
      gemm_.mtPacked(pool_, false, rows, lg, V, head_, dH_.data() + (size_t)r0 * D, D, false);
      gemm_.mt(pool_, true, false, V, D, rows, lg, V, Hc, D, gEmbOut_, D, true);
    }
  }
  double s = 0;
  for (int r = 0; r < N; r++) s += rowLoss_[r];
  return s / ((double)B * (T - 1));
}

void Engine::logits(const int32_t* ids, int B, int T, float* out) {
  checkIds(ids, B, T, V_, false);
  forward(ids, B, T, false);
  gemm_.mt(pool_, false, true, B * T, V_, D_, lnf_.data(), D_, embOut_, D_, out, V_, false);
}

double Engine::trainStep(const int32_t* ids, int B, int T, double gradScale) {
  checkIds(ids, B, T, V_, true);
  ensureTrainState();
  forward(ids, B, T, true);
  const double loss = headLoss(ids, B, T, 1, gradScale, nullptr);
  backward(ids, B, T);
  return loss;
}

double Engine::evalLoss(const int32_t* ids, int B, int T) {
  checkIds(ids, B, T, V_, true);
  forward(ids, B, T, false);
  return headLoss(ids, B, T, 0, 0, nullptr);
}

void Engine::tokenLogprobs(const int32_t* ids, int B, int T, float* out) {
  checkIds(ids, B, T, V_, true);
  forward(ids, B, T, false);
  headLoss(ids, B, T, 2, 0, out);
}

void Engine::meanHidden(const int32_t* ids, int B, int T, const int32_t* lengths, float* out) {
  checkIds(ids, B, T, V_, false);
  checkLengths(lengths, B, T);
  forward(ids, B, T, false);
  const int D = D_;
  for (int b = 0; b < B; b++) {
    std::vector<double> acc(D, 0.0);
    for (int t = 0; t < lengths[b]; t++) {
      const float* h = lnf_.data() + ((size_t)b * T + t) * D;
      for (int j = 0; j < D; j++) acc[j] += h[j];
    }
    for (int j = 0; j < D; j++) out[(size_t)b * D + j] = (float)(acc[j] / lengths[b]);
  }
}

void Engine::zeroGrads() {
  ensureTrainState();
  pool_.parallelFor((int64_t)total_, [&](int, int64_t i0, int64_t i1) {
    std::memset(g_.data() + i0, 0, sizeof(float) * (i1 - i0));
  });
}

double Engine::applyAdamW(const AdamW& o) {
  ensureTrainState();
  const int nt = pool_.size();
  const int64_t n = (int64_t)total_;
  const Kernel* kn = gemm_.kernel();
  pool_.run([&](int tid) {
    const int64_t i0 = n * tid / nt, i1 = n * (tid + 1) / nt;
    partial_[tid].assign(1, kn->sumSquares(g_.data() + i0, i1 - i0));
  });
  double sq = 0;
  for (int t = 0; t < nt; t++) sq += partial_[t][0];
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm)) {  // never let NaN or Inf into the weights: skip, as the contract says
    zeroGrads();
    return norm;
  }
  const AdamStep a = adamStep(o, norm, ++step);
  weightsChanged();
  const float stepSize = a.stepSize, bc2s = a.bc2s, fcoef = a.coef, b1 = a.b1, b2 = a.b2, eps = a.eps, decay = a.decay;
  pool_.run([&](int tid) {
    const int64_t t0 = n * tid / nt, t1 = n * (tid + 1) / nt;
    for (const ParamInfo& pi : params_) {
      const int64_t a = std::max<int64_t>(t0, pi.offset), b = std::min<int64_t>(t1, pi.offset + pi.size);
      if (a < b)
        kn->adamw(w_.data() + a, g_.data() + a, m_.data() + a, v_.data() + a, b - a, fcoef, b1, b2, eps, stepSize, bc2s,
                  pi.decay ? decay : 1.f);
    }
  });
  return norm;
}

}  // namespace cpt
