// The CUDA engine's own kernels (everything but the matrix products, which go to cuBLASLt).
// T is the activation type: float (fp32 engine) or __nv_bfloat16 (mixed precision); statistics,
// the residual stream, gradients of the residual stream and every reduction are fp32 (double
// where the CPU engine uses double). No kernel uses atomics: every sum runs in a fixed order, so
// results are bitwise reproducible. Shapes: B batch, T_ sequence, N = B * T_ rows, D hidden,
// H heads, hd head dim, I MLP width, V vocabulary; "heads layout" is [B, H, T_, hd].
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace cpt {
namespace cuda {

constexpr int kThreads = 256;  // block size of the row kernels (a multiple of 32)

__device__ __forceinline__ float toF(float x) { return x; }
__device__ __forceinline__ float toF(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T fromF(float x);
template <>
__device__ __forceinline__ float fromF<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 fromF<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Sum over the block in a fixed order (butterfly within warps, then warps in index order); every
// thread gets the result. sh: 32 floats of shared memory.
template <class F>
__device__ __forceinline__ F blockSum(F v, F* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // sh may still be read by a previous call
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  F s = 0;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += sh[w];
  return s;
}
__device__ __forceinline__ float blockMax(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = -INFINITY;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) s = fmaxf(s, sh[w]);
  return s;
}

// Running (max, sum of exp(x - max)) of a sequence, merged in a fixed order: one read of the row
// for its log-sum-exp, one exp per element.
struct MaxSum {
  float m = -INFINITY, s = 0;
  __device__ __forceinline__ void add(float x) {
    if (x > m) s = s * expf(m - x) + 1.f, m = x;
    else s += expf(x - m);
  }
};
// Log-sum-exp over the block of each thread's MaxSum (fixed order: blockMax, blockSum).
__device__ __forceinline__ float blockLse(MaxSum a, float* sh) {
  const float m = blockMax(a.m, sh);
  return m + logf(blockSum(a.m == -INFINITY ? 0.f : a.s * expf(a.m - m), sh));
}

__device__ __forceinline__ float gelu(float x, bool exact) {
  if (exact) return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.f + tanhf(u));
}
__device__ __forceinline__ float geluGrad(float x, bool exact) {
  if (exact) return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * 0.3989422804014327f * expf(-0.5f * x * x);
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x), t = tanhf(u);
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * 0.7978845608028654f * (1.f + 3.f * 0.044715f * x * x);
}

// x [N, D] = E [V, D] at ids [N]; grid N.
__global__ void embedKernel(const int32_t* ids, const float* E, float* x, int D) {
  const size_t r = blockIdx.x;
  const float* src = E + (size_t)ids[r] * D;
  for (int j = threadIdx.x; j < D; j += blockDim.x) x[r * D + j] = src[j];
}

template <class T>
__device__ __forceinline__ void castVec(const float* s, T* d, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    d[i] = fromF<T>(s[i]);
}
template <class T>
__global__ void castKernel(const float* s, T* d, size_t n) { castVec(s, d, n); }

// y [N, D] = (x - mean) * rstd * w + b per row of x [N, D], mean and rstd [N] kept for backward; grid N.
template <class T>
__global__ void layerNormKernel(const float* x, const float* w, const float* b, T* y, float* mean, float* rstd, int D,
                                float eps) {
  __shared__ float sh[32];
  const size_t r = blockIdx.x;
  const float* xr = x + r * D;
  float s = 0;
  for (int j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];
  const float mu = blockSum(s, sh) / D;
  float ss = 0;
  for (int j = threadIdx.x; j < D; j += blockDim.x) ss += (xr[j] - mu) * (xr[j] - mu);
  const float rs = rsqrtf(blockSum(ss, sh) / D + eps);
  if (threadIdx.x == 0) mean[r] = mu, rstd[r] = rs;
  for (int j = threadIdx.x; j < D; j += blockDim.x) y[r * D + j] = fromF<T>((xr[j] - mu) * rs * w[j] + b[j]);
}

// dx += rstd * (dy * w - mean(dy * w) - xhat * mean(dy * w * xhat)); grid N.
__global__ void layerNormBackKernel(const float* x, const float* mean, const float* rstd, const float* w, const float* dy,
                                    float* dx, int D) {
  __shared__ float sh[32];
  const size_t r = blockIdx.x;
  const float m = mean[r], rs = rstd[r];
  float s1 = 0, s2 = 0;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const float dxh = dy[r * D + j] * w[j];
    s1 += dxh, s2 += dxh * (x[r * D + j] - m) * rs;
  }
  const float a = blockSum(s1, sh) / D, bb = blockSum(s2, sh) / D;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const float xh = (x[r * D + j] - m) * rs;
    dx[r * D + j] += rs * (dy[r * D + j] * w[j] - a - xh * bb);
  }
}

// Column sums in two fixed-order passes: chunk k of `rows` rows writes part[k, :], then
// reducePartials adds the chunks in order. grid (ceil(C / kThreads), chunks).
template <class T>
__global__ void colSumPartialsKernel(const T* x, int N, int C, int rows, float* part) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= C) return;
  const int r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
  float s = 0;
  for (int r = r0; r < r1; r++) s += toF(x[(size_t)r * C + j]);
  part[(size_t)blockIdx.y * C + j] = s;
}
// Layer-norm parameter gradients: part[k, j] = sum dy * xhat (weight), part[k, D + j] = sum dy.
__global__ void lnParamPartialsKernel(const float* x, const float* mean, const float* rstd, const float* dy, int N, int D,
                                      int rows, float* part) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= D) return;
  const int r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
  float sw = 0, sb = 0;
  for (int r = r0; r < r1; r++) {
    const float g = dy[(size_t)r * D + j];
    sw += g * (x[(size_t)r * D + j] - mean[r]) * rstd[r];
    sb += g;
  }
  part[(size_t)blockIdx.y * 2 * D + j] = sw;
  part[(size_t)blockIdx.y * 2 * D + D + j] = sb;
}
// out[j] += sum over chunks k in order of part[k, j]; grid ceil(C / kThreads).
__global__ void reducePartialsKernel(const float* part, int chunks, int C, float* out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= C) return;
  double s = 0;
  for (int k = 0; k < chunks; k++) s += part[(size_t)k * C + j];
  out[j] += (float)s;
}

// qkv (fp32 [N, 3D] = [B, T, H, 3, hd], without bias) + bias -> q, k, v [B, H, T, hd] (heads
// layout), with rotary on the first 2 * half dims of q and k (HF's half-split rotation).
// grid N * H, block hd.
template <class T>
__global__ void splitHeadsKernel(const float* qkv, const float* bias, const float* cs, const float* sn, T* q, T* k, T* v,
                                 int T_, int H, int hd, int half) {
  const int n = blockIdx.x / H, h = blockIdx.x % H, d = threadIdx.x;
  const int b = n / T_, t = n % T_;
  const size_t src = (size_t)n * 3 * H * hd + (size_t)h * 3 * hd;
  const int hb = h * 3 * hd;
  const size_t dst = (((size_t)b * H + h) * T_ + t) * hd + d;
  T* outs[2] = {q, k};
  for (int part = 0; part < 2; part++) {
    const int o = part * hd;
    float val = qkv[src + o + d] + bias[hb + o + d];
    if (d < 2 * half) {
      const int i = d < half ? d : d - half;
      const float c = cs[(size_t)t * half + i], s = sn[(size_t)t * half + i];
      const float a = qkv[src + o + i] + bias[hb + o + i], bb = qkv[src + o + i + half] + bias[hb + o + i + half];
      val = d < half ? a * c - bb * s : bb * c + a * s;
    }
    outs[part][dst] = fromF<T>(val);
  }
  v[dst] = fromF<T>(qkv[src + 2 * hd + d] + bias[hb + 2 * hd + d]);
}

// Gradients of q, k, v (fp32, heads layout) -> dqkv [N, 3D] (fp32 and T), rotary undone.
// grid N * H, block hd.
template <class T>
__global__ void mergeHeadsGradKernel(const float* dq, const float* dk, const float* dv, const float* cs, const float* sn,
                                     float* out32, T* out, int T_, int H, int hd, int half) {
  const int n = blockIdx.x / H, h = blockIdx.x % H, d = threadIdx.x;
  const int b = n / T_, t = n % T_;
  const size_t base = (((size_t)b * H + h) * T_ + t) * hd;
  const size_t dst = (size_t)n * 3 * H * hd + (size_t)h * 3 * hd;
  const float* ins[2] = {dq, dk};
  for (int part = 0; part < 2; part++) {
    const float* g = ins[part] + base;
    float val = g[d];
    if (d < 2 * half) {
      const int i = d < half ? d : d - half;
      const float c = cs[(size_t)t * half + i], s = sn[(size_t)t * half + i];
      val = d < half ? g[i] * c + g[i + half] * s : g[i + half] * c - g[i] * s;
    }
    out32[dst + part * hd + d] = val;
    out[dst + part * hd + d] = fromF<T>(val);
  }
  const float gv = dv[base + d];
  out32[dst + 2 * hd + d] = gv;
  out[dst + 2 * hd + d] = fromF<T>(gv);
}

// Heads layout <-> rows: y [N, D] from yh [B, H, T, hd], or dyh [B, H, T, hd] from dy [N, D]
// (fp32); grid N * H, block hd.
template <class T>
__global__ void mergeHeadsKernel(const T* yh, T* y, int T_, int H, int hd) {
  const int n = blockIdx.x / H, h = blockIdx.x % H, d = threadIdx.x;
  const int b = n / T_, t = n % T_;
  y[(size_t)n * H * hd + h * hd + d] = yh[(((size_t)b * H + h) * T_ + t) * hd + d];
}
template <class T>
__global__ void splitGradKernel(const float* dy, T* dyh, int T_, int H, int hd) {
  const int n = blockIdx.x / H, h = blockIdx.x % H, d = threadIdx.x;
  const int b = n / T_, t = n % T_;
  dyh[(((size_t)b * H + h) * T_ + t) * hd + d] = fromF<T>(dy[(size_t)n * H * hd + h * hd + d]);
}

// Causal softmax of one block of query rows [i0, i0 + rows) against keys [0, cols): S [B*H, rows,
// ld] (fp32, already scaled) -> P [B*H, rows, ld] (T), lse [B*H, T] at the block's rows. grid
// (rows, B * H).
template <class T>
__global__ void softmaxKernel(const float* S, T* P, float* lse, int rows, int cols, int ld, int i0, int T_) {
  __shared__ float sh[32];
  const size_t row = (size_t)blockIdx.y * rows + blockIdx.x;
  const int i = i0 + blockIdx.x, lim = i + 1;
  const float* s = S + row * ld;
  MaxSum a;
  for (int j = threadIdx.x; j < lim; j += blockDim.x) a.add(s[j]);
  const float l = blockLse(a, sh);
  if (threadIdx.x == 0) lse[(size_t)blockIdx.y * T_ + i] = l;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) P[row * ld + j] = fromF<T>(j < lim ? expf(s[j] - l) : 0.f);
}

// Backward of the same block: P = exp(S - lse) recomputed, dS = P * (dP - sum_j P dP) * scale.
template <class T>
__global__ void softmaxBackKernel(const float* S, const float* dP, const float* lse, T* P, T* dS, int rows, int cols,
                                  int ld, int i0, int T_, float scale) {
  __shared__ float sh[32];
  const size_t row = (size_t)blockIdx.y * rows + blockIdx.x;
  const int i = i0 + blockIdx.x, lim = i + 1;
  const float l = lse[(size_t)blockIdx.y * T_ + i];
  const float* s = S + row * ld;
  const float* dp = dP + row * ld;
  float dot = 0;
  for (int j = threadIdx.x; j < lim; j += blockDim.x) dot += expf(s[j] - l) * dp[j];
  dot = blockSum(dot, sh);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    const float p = j < lim ? expf(s[j] - l) : 0.f;
    P[row * ld + j] = fromF<T>(p);
    dS[row * ld + j] = fromF<T>(p * (dp[j] - dot) * scale);
  }
}

// h (fp32 [N, I], without bias) + bias -> h1 (pre-activation, T) and g = gelu(h1) (T).
template <class T>
__global__ void biasGeluKernel(const float* h, const float* bias, T* h1, T* g, size_t n, int I, bool exact) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float pre = h[i] + bias[i % I];
    h1[i] = fromF<T>(pre);
    g[i] = fromF<T>(gelu(pre, exact));
  }
}
// dh = dg * gelu'(h1), dg fp32 -> dh (T).
template <class T>
__global__ void geluBackKernel(const float* dg, const T* h1, T* dh, size_t n, bool exact) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dh[i] = fromF<T>(dg[i] * geluGrad(toF(h1[i]), exact));
}

// Residual sums (fp32). out = (a + ab) + x; or, parallel residual, out = (m + mb) + (a + ab) + x
// (the order HF adds them in).
__global__ void residualKernel(const float* a, const float* ab, const float* m, const float* mb, const float* x,
                               float* out, size_t n, int D) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const int j = (int)(i % D);
    const float att = a[i] + ab[j];
    out[i] = m ? (m[i] + mb[j]) + att + x[i] : att + x[i];
  }
}

// Cross-entropy of rows [r0, r0 + gridDim.x) from their logits (fp32 [rows, V]). The last
// position of each sequence predicts nothing. mode 0: loss; 1: loss and dlogits = (softmax -
// onehot) * gs (T); 2: loss and log p(target) into lp [B, T_ - 1]. The logits are read once for
// the log-sum-exp and once more for the gradient, four at a time when V allows.
template <class T>
__global__ void crossEntropyKernel(const float* logits, const int32_t* ids, int r0, int T_, int V, int mode, float gs,
                                   double* rowLoss, float* lp, T* dl) {
  __shared__ float sh[32];
  const int i = blockIdx.x, r = r0 + i, t = r % T_;
  const float* l = logits + (size_t)i * V;
  T* d = dl + (size_t)i * V;
  if (t == T_ - 1) {
    if (threadIdx.x == 0) rowLoss[r] = 0;
    if (mode == 1)
      for (int j = threadIdx.x; j < V; j += blockDim.x) d[j] = fromF<T>(0.f);
    return;
  }
  const int tgt = ids[r + 1], v4 = V % 4 == 0 ? V / 4 : 0;
  MaxSum a;
  for (int j = threadIdx.x; j < v4; j += blockDim.x) {
    const float4 x = reinterpret_cast<const float4*>(l)[j];
    a.add(x.x), a.add(x.y), a.add(x.z), a.add(x.w);
  }
  for (int j = 4 * v4 + threadIdx.x; j < V; j += blockDim.x) a.add(l[j]);
  const float lse = blockLse(a, sh), lt = l[tgt];
  if (threadIdx.x == 0) {
    rowLoss[r] = (double)lse - (double)lt;
    if (mode == 2) lp[(size_t)(r / T_) * (T_ - 1) + t] = lt - lse;
  }
  if (mode != 1) return;
  for (int j = threadIdx.x; j < v4; j += blockDim.x) {
    const float4 x = reinterpret_cast<const float4*>(l)[j];
    const float y[4] = {x.x, x.y, x.z, x.w};
    for (int k = 0; k < 4; k++) d[4 * j + k] = fromF<T>(expf(y[k] - lse) * gs - (4 * j + k == tgt ? gs : 0.f));
  }
  for (int j = 4 * v4 + threadIdx.x; j < V; j += blockDim.x) d[j] = fromF<T>(expf(l[j] - lse) * gs - (j == tgt ? gs : 0.f));
}

// Embedding gradient without atomics: rows grouped by token on the host (ascending rows within a
// token); block u adds its token's rows in order. grid = number of distinct tokens.
__global__ void embedBackKernel(const int32_t* tokens, const int32_t* offsets, const int32_t* rows, const float* dX,
                                float* gE, int D) {
  const int u = blockIdx.x, tok = tokens[u];
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    float acc = gE[(size_t)tok * D + j];
    for (int k = offsets[u]; k < offsets[u + 1]; k++) acc += dX[(size_t)rows[k] * D + j];
    gE[(size_t)tok * D + j] = acc;
  }
}

// Mean over the first lengths[b] positions of the final layer norm's output, recomputed in fp32.
// grid (ceil(D / kThreads), B).
__global__ void meanHiddenKernel(const float* x, const float* mean, const float* rstd, const float* w, const float* bias,
                                 const int32_t* lengths, float* out, int T_, int D) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
  if (j >= D) return;
  double acc = 0;
  for (int t = 0; t < lengths[b]; t++) {
    const size_t r = (size_t)b * T_ + t;
    acc += (x[r * D + j] - mean[r]) * rstd[r] * w[j] + bias[j];
  }
  out[(size_t)b * D + j] = (float)(acc / lengths[b]);
}

// Sum of squares of the gradient, one double per block (a fixed grid: fixed order).
__global__ void sumSquaresKernel(const float* g, size_t n, double* part) {
  __shared__ double sh[32];
  double s = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    s += (double)g[i] * g[i];
  s = blockSum(s, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// torch.optim.AdamW, as the CPU engine computes it: clip coefficient, decoupled decay first,
// bias-corrected moments; zeroes the gradient and, when wT is set, writes the bf16 copy of the
// weights the products read (no separate cast). Every tensor in one launch: the flat parameters
// [0, n) are `segs` runs, run s from start[s] with weight decay when decayed[s] (2-D weights).
template <class T>
__global__ void adamwKernel(float* w, float* g, float* m, float* v, size_t n, const size_t* start, const int* decayed,
                            int segs, float coef, float b1, float b2, float eps, float stepSize, float bc2s, float decay,
                            T* wT) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    int lo = 0, hi = segs - 1;  // the run holding i: the last start <= i
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (start[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    const float gi = g[i] * coef;
    const float p = decayed[lo] ? w[i] * decay : w[i];
    const float mi = m[i] = b1 * m[i] + (1 - b1) * gi;
    const float vi = v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    const float wi = w[i] = p - stepSize * mi / (sqrtf(vi) / bc2s + eps);
    if (wT) wT[i] = fromF<T>(wi);
    g[i] = 0.f;
  }
}

}  // namespace cuda
}  // namespace cpt
