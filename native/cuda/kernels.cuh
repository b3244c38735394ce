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
#include <type_traits>

#include "fragments.cuh"

namespace cpt {
namespace cuda {

constexpr int kThreads = 256;  // block size of the row kernels (a multiple of 32)

// Loops over a register array unrolled (registers need constant indices), by nvcc or the host compiler.
#ifdef __CUDACC__
#define CPT_UNROLL _Pragma("unroll")
#else
#define CPT_UNROLL _Pragma("GCC unroll 16")
#endif

__device__ __forceinline__ float toF(float x) { return x; }
__device__ __forceinline__ float toF(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T fromF(float x);
template <>
__device__ __forceinline__ float fromF<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 fromF<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Four consecutive elements as one 16-byte (fp32) or 8-byte (bf16) access; p aligned to that.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  return float4{__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                __uint_as_float(u.y & 0xffff0000u)};
}
// Two floats rounded to bf16 in one register, the first in the lower half (memory order).
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(lo)) | (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16;
}
// pack2's inverse (exact: a bf16 is a float's upper half).
__device__ __forceinline__ void unpack2(uint32_t x, float (&v)[2]) { v[0] = __uint_as_float(x << 16), v[1] = __uint_as_float(x & 0xffff0000u); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
__device__ __forceinline__ void store4(__nv_bfloat16* p, float4 v) {
  *reinterpret_cast<uint2*>(p) = uint2{pack2(v.x, v.y), pack2(v.z, v.w)};
}

// A run of W consecutive elements as floats in registers. kVec<T> of them make one 16-byte access
// whatever T is (8 bf16 or 4 fp32): on the H200 the kernels that moved bf16 by 8-byte accesses ran
// at 2.3-2.7 TB/s where those moving fp32 by 16-byte ones reached 3.4-4.4 (docs/measured/
// verify-h200-2026-12-04d.log). W = 1 is the scalar fallback; a run's pointer is 16-byte aligned
// when W > 1 (runWidth checks).
template <int W>
struct Vec {
  float v[W];
};
template <class T>
constexpr int kVec = 16 / (int)sizeof(T);
template <int W>
using Width = std::integral_constant<int, W>;
template <int W, class T>
__device__ __forceinline__ Vec<W> loadVec(const T* p) {
  Vec<W> r;
  if constexpr (W == 1) {
    r.v[0] = toF(*p);
  } else if constexpr (W == 8 && std::is_same<T, __nv_bfloat16>::value) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const uint32_t h[4] = {u.x, u.y, u.z, u.w};
CPT_UNROLL
    for (int k = 0; k < 4; k++) r.v[2 * k] = __uint_as_float(h[k] << 16), r.v[2 * k + 1] = __uint_as_float(h[k] & 0xffff0000u);
  } else {
CPT_UNROLL
    for (int k = 0; k < W; k += 4) {
      const float4 q = load4(p + k);
      r.v[k] = q.x, r.v[k + 1] = q.y, r.v[k + 2] = q.z, r.v[k + 3] = q.w;
    }
  }
  return r;
}
template <int W, class T>
__device__ __forceinline__ void storeVec(T* p, const Vec<W>& r) {
  if constexpr (W == 1) {
    *p = fromF<T>(r.v[0]);
  } else if constexpr (W == 8 && std::is_same<T, __nv_bfloat16>::value) {
    *reinterpret_cast<uint4*>(p) = uint4{pack2(r.v[0], r.v[1]), pack2(r.v[2], r.v[3]), pack2(r.v[4], r.v[5]), pack2(r.v[6], r.v[7])};
  } else {
CPT_UNROLL
    for (int k = 0; k < W; k += 4) store4(p + k, float4{r.v[k], r.v[k + 1], r.v[k + 2], r.v[k + 3]});
  }
}
template <int W>
__device__ __forceinline__ Vec<W> zeroVec() {
  Vec<W> r;
CPT_UNROLL
  for (int k = 0; k < W; k++) r.v[k] = 0.f;
  return r;
}
// The run's elements summed pairwise ((x0 + x1) + (x2 + x3) for four).
template <int W>
__device__ __forceinline__ float vecSum(const Vec<W>& r) {
  if constexpr (W == 1) return r.v[0];
  else {
    Vec<W / 2> h;
CPT_UNROLL
    for (int k = 0; k < W / 2; k++) h.v[k] = r.v[2 * k] + r.v[2 * k + 1];
    return vecSum(h);
  }
}
// The widest run (kVec<T>, 4 or 1 elements) that divides a and b and that every pointer (or-ed
// into ptrs) allows.
template <class T>
__device__ __forceinline__ int runWidth(uintptr_t ptrs, size_t a, size_t b = 0) {
  if (ptrs % 16) return 1;
  if (a % kVec<T> == 0 && b % kVec<T> == 0) return kVec<T>;
  return a % 4 == 0 && b % 4 == 0 ? 4 : 1;
}
// f(Width<W>{}) for w = 8, 4 or 1: a run width as a compile-time constant.
template <class F>
__device__ __forceinline__ void byWidth(int w, F&& f) {
  if (w == 8) f(Width<8>{});
  else if (w == 4) f(Width<4>{});
  else f(Width<1>{});
}
// f(i, Width<W>{}) for the runs [i, i + W) of [0, n), grid-stride: runs of w, then the tail one by one.
template <class F>
__device__ __forceinline__ void forRuns(size_t n, int w, F&& f) {
  const size_t stride = (size_t)gridDim.x * blockDim.x, first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  byWidth(w, [&](auto W) {
    constexpr int k = decltype(W)::value;
    for (size_t i = first; i < n / k; i += stride) f(k * i, W);
    for (size_t i = n / k * k + first; i < n; i += stride) f(i, Width<1>{});
  });
}

// Sum over the block in a fixed order (butterfly within warps, then warps in index order); every
// thread gets the result. sh: 32 elements of shared memory, the launch's dynamic kSumSmem (static
// arrays count against the simulator's thread-local storage: sim/README.md).
constexpr size_t kSumSmem = 32 * sizeof(double);
// Sum and max over the warp by a butterfly: every lane gets the same bits.
template <class F>
__device__ __forceinline__ F warpSum(F v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <class F>
__device__ __forceinline__ F blockSum(F v, F* sh) {
  v = warpSum(v);
  __syncthreads();  // sh may still be read by a previous call
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  F s = 0;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += sh[w];
  return s;
}
__device__ __forceinline__ float blockMax(float v, float* sh) {
  v = warpMax(v);
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

// d = s, four elements per thread and step (s and d from cudaMalloc: aligned), the tail one by one.
template <class T>
__global__ void castKernel(const float* s, T* d, size_t n) {
  const size_t stride = (size_t)gridDim.x * blockDim.x, n4 = n / 4;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += stride) store4(d + 4 * i, load4(s + 4 * i));
  for (size_t i = 4 * n4 + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) d[i] = fromF<T>(s[i]);
}

// y [N, D] = (x - mean) * rstd * w + b per row of x [N, D], mean and rstd [N] kept for backward; grid N.
// Ns = 2 normalises the rows twice, with (w, b) into y and (w2, b2) into y2, from one read and one
// set of statistics: GPT-NeoX's parallel residual feeds attention and the MLP layer norms of the
// same x (ln1, ln2). The row is read from HBM once: each thread keeps kLnPer of its elements in
// registers, in runs of kVec<T> (16-byte accesses to y) where D and the pointers allow, else one at
// a time (D up to kLnPer * blockDim.x either way); wider rows read x again from cache.
constexpr int kLnPer = 16;
template <class T, int Ns>
__global__ void layerNormKernel(const float* x, const float* w, const float* b, T* y, const float* w2, const float* b2,
                                T* y2, float* mean, float* rstd, int D, float eps) {
  static_assert(Ns == 1 || Ns == 2, "one or two layer norms");
  CPT_DYNAMIC_SMEM(float, sh);  // kSumSmem
  constexpr int W = kVec<T>, R = kLnPer / W;
  const float* ws[2] = {w, w2};
  const float* bs[2] = {b, b2};
  T* ys[2] = {y, y2};
  const size_t r = blockIdx.x;
  const float* xr = x + r * D;
  float s = 0, ss = 0, mu, rs;
  const bool fits = D <= kLnPer * (int)blockDim.x;  // the same for every thread of the block
  uintptr_t ptrs = (uintptr_t)x;
CPT_UNROLL
  for (int n = 0; n < Ns; n++) ptrs |= (uintptr_t)ws[n] | (uintptr_t)bs[n] | (uintptr_t)ys[n];
  if (fits && runWidth<T>(ptrs, D) == W) {
    Vec<W> v[R];
CPT_UNROLL
    for (int k = 0; k < R; k++) {
      const int j = W * (threadIdx.x + k * blockDim.x);
      v[k] = j < D ? loadVec<W>(xr + j) : zeroVec<W>();
      s += vecSum(v[k]);
    }
    mu = blockSum(s, sh) / D;
CPT_UNROLL
    for (int k = 0; k < R; k++)
      if ((int)(W * (threadIdx.x + k * blockDim.x)) < D) {
        Vec<W> d;
CPT_UNROLL
        for (int e = 0; e < W; e++) d.v[e] = (v[k].v[e] - mu) * (v[k].v[e] - mu);
        ss += vecSum(d);
      }
    rs = rsqrtf(blockSum(ss, sh) / D + eps);
CPT_UNROLL
    for (int k = 0; k < R; k++) {
      const int j = W * (threadIdx.x + k * blockDim.x);
      if (j >= D) continue;
CPT_UNROLL
      for (int n = 0; n < Ns; n++) {
        const Vec<W> g = loadVec<W>(ws[n] + j), o = loadVec<W>(bs[n] + j);
        Vec<W> out;
CPT_UNROLL
        for (int e = 0; e < W; e++) out.v[e] = (v[k].v[e] - mu) * rs * g.v[e] + o.v[e];
        storeVec(ys[n] + r * D + j, out);
      }
    }
  } else if (fits) {
    float v[kLnPer];
CPT_UNROLL
    for (int k = 0; k < kLnPer; k++) {
      const int j = threadIdx.x + k * blockDim.x;
      v[k] = j < D ? xr[j] : 0.f;
      if (j < D) s += v[k];
    }
    mu = blockSum(s, sh) / D;
CPT_UNROLL
    for (int k = 0; k < kLnPer; k++)
      if ((int)(threadIdx.x + k * blockDim.x) < D) ss += (v[k] - mu) * (v[k] - mu);
    rs = rsqrtf(blockSum(ss, sh) / D + eps);
CPT_UNROLL
    for (int k = 0; k < kLnPer; k++) {
      const int j = threadIdx.x + k * blockDim.x;
CPT_UNROLL
      for (int n = 0; n < Ns; n++)
        if (j < D) ys[n][r * D + j] = fromF<T>((v[k] - mu) * rs * ws[n][j] + bs[n][j]);
    }
  } else {
    for (int j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];
    mu = blockSum(s, sh) / D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) ss += (xr[j] - mu) * (xr[j] - mu);
    rs = rsqrtf(blockSum(ss, sh) / D + eps);
    for (int j = threadIdx.x; j < D; j += blockDim.x)
CPT_UNROLL
      for (int n = 0; n < Ns; n++) ys[n][r * D + j] = fromF<T>((xr[j] - mu) * rs * ws[n][j] + bs[n][j]);
  }
  if (threadIdx.x == 0) mean[r] = mu, rstd[r] = rs;
}

// dx += rstd * (dy * w - mean(dy * w) - xhat * mean(dy * w * xhat)) with dy in T (a product's
// output), and the sum's copy in T into dxT unless null (the products' operand, where this is
// dx's last addition); grid N. Ns = 2 adds a second norm's term of the same rows and statistics,
// (w2, dy2), after the first (the parallel residual's ln2 and ln1 of x): x and dx read once for
// both. As the forward: each thread keeps dy * w and xhat of its kLnPer elements in registers, in
// runs of kVec<T> where D and the pointers allow (every input read once), else the row is read
// twice.
template <class T, int Ns>
__global__ void layerNormBackKernel(const float* x, const float* mean, const float* rstd, const float* w, const T* dy,
                                    const float* w2, const T* dy2, float* dx, T* dxT, int D) {
  static_assert(Ns == 1 || Ns == 2, "one or two layer norms");
  CPT_DYNAMIC_SMEM(float, sh);  // kSumSmem
  constexpr int W = kVec<T>, R = kLnPer / W;
  const float* ws[2] = {w, w2};
  const T* dys[2] = {dy, dy2};
  const size_t r = blockIdx.x;
  const float m = mean[r], rs = rstd[r];
  float s1[Ns] = {}, s2[Ns] = {}, a[Ns], bb[Ns];
  uintptr_t ptrs = (uintptr_t)x | (uintptr_t)dx | (uintptr_t)dxT;
CPT_UNROLL
  for (int n = 0; n < Ns; n++) ptrs |= (uintptr_t)ws[n] | (uintptr_t)dys[n];
  if (D <= kLnPer * (int)blockDim.x && runWidth<T>(ptrs, D) == W) {
    Vec<W> g[Ns][R], xh[R];  // dy * w and xhat
CPT_UNROLL
    for (int k = 0; k < R; k++) {
      const int j = W * (threadIdx.x + k * blockDim.x);
      const bool in = j < D;  // past the row: zeros, which add nothing
      const Vec<W> xv = in ? loadVec<W>(x + r * D + j) : zeroVec<W>();
CPT_UNROLL
      for (int e = 0; e < W; e++) xh[k].v[e] = (xv.v[e] - m) * rs;
CPT_UNROLL
      for (int n = 0; n < Ns; n++) {
        const Vec<W> dyv = in ? loadVec<W>(dys[n] + r * D + j) : zeroVec<W>(), wv = in ? loadVec<W>(ws[n] + j) : zeroVec<W>();
        Vec<W> p;
CPT_UNROLL
        for (int e = 0; e < W; e++) g[n][k].v[e] = dyv.v[e] * wv.v[e], p.v[e] = g[n][k].v[e] * xh[k].v[e];
        s1[n] += vecSum(g[n][k]), s2[n] += vecSum(p);
      }
    }
CPT_UNROLL
    for (int n = 0; n < Ns; n++) a[n] = blockSum(s1[n], sh) / D, bb[n] = blockSum(s2[n], sh) / D;
CPT_UNROLL
    for (int k = 0; k < R; k++) {
      const int j = W * (threadIdx.x + k * blockDim.x);
      if (j >= D) continue;
      Vec<W> v = loadVec<W>(dx + r * D + j);
CPT_UNROLL
      for (int n = 0; n < Ns; n++)
CPT_UNROLL
        for (int e = 0; e < W; e++) v.v[e] += rs * (g[n][k].v[e] - a[n] - xh[k].v[e] * bb[n]);
      storeVec(dx + r * D + j, v);
      if (dxT) storeVec(dxT + r * D + j, v);
    }
    return;
  }
  for (int j = threadIdx.x; j < D; j += blockDim.x)
CPT_UNROLL
    for (int n = 0; n < Ns; n++) {
      const float dxh = toF(dys[n][r * D + j]) * ws[n][j];
      s1[n] += dxh, s2[n] += dxh * (x[r * D + j] - m) * rs;
    }
CPT_UNROLL
  for (int n = 0; n < Ns; n++) a[n] = blockSum(s1[n], sh) / D, bb[n] = blockSum(s2[n], sh) / D;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const float xh = (x[r * D + j] - m) * rs;
    float v = dx[r * D + j];
CPT_UNROLL
    for (int n = 0; n < Ns; n++) v += rs * (toF(dys[n][r * D + j]) * ws[n][j] - a[n] - xh * bb[n]);
    dx[r * D + j] = v;
    if (dxT) dxT[r * D + j] = fromF<T>(v);
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
// Layer-norm parameter gradients: part[k, j] = sum dy * xhat (weight), part[k, D + j] = sum dy;
// with dy2 (a second norm of the same rows: the parallel residual's), its two follow at 2D and 3D.
template <class T>
__global__ void lnParamPartialsKernel(const float* x, const float* mean, const float* rstd, const T* dy, const T* dy2,
                                      int N, int D, int rows, float* part) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= D) return;
  const int r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
  float sw = 0, sb = 0, sw2 = 0, sb2 = 0;
  for (int r = r0; r < r1; r++) {
    const float xc = x[(size_t)r * D + j] - mean[r], g = toF(dy[(size_t)r * D + j]);
    sw += g * xc * rstd[r], sb += g;
    if (dy2) {
      const float g2 = toF(dy2[(size_t)r * D + j]);
      sw2 += g2 * xc * rstd[r], sb2 += g2;
    }
  }
  float* p = part + (size_t)blockIdx.y * (dy2 ? 4 : 2) * D + j;
  p[0] = sw, p[D] = sb;
  if (dy2) p[2 * D] = sw2, p[3 * D] = sb2;
}
// out[j] = (acc ? out[j] : 0) + the sum over chunks k in order of part[k, j]; grid ceil(C / kThreads).
__global__ void reducePartialsKernel(const float* part, int chunks, int C, float* out, bool acc) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= C) return;
  double s = 0;
  for (int k = 0; k < chunks; k++) s += part[(size_t)k * C + j];
  out[j] = (acc ? out[j] : 0.f) + (float)s;
}

template <int W>
__device__ __forceinline__ Vec<W> operator+(Vec<W> a, const Vec<W>& b) {
CPT_UNROLL
  for (int k = 0; k < W; k++) a.v[k] += b.v[k];
  return a;
}
// a * c - b * s and b * c + a * s: the two halves of a rotation.
template <int W>
__device__ __forceinline__ Vec<W> rotate(const Vec<W>& a, const Vec<W>& b, const Vec<W>& c, const Vec<W>& s, bool first) {
  Vec<W> r;
CPT_UNROLL
  for (int k = 0; k < W; k++) r.v[k] = first ? a.v[k] * c.v[k] - b.v[k] * s.v[k] : b.v[k] * c.v[k] + a.v[k] * s.v[k];
  return r;
}

// The split and merge of the heads work on runs of one head (runWidth's: 16-byte accesses where
// hd, the rotary half (0: none) and every pointer allow); a run never straddles the rotary halves.
// f(n, h, b, t, d, Width<W>{}) for each run: row n = b * T_ + t, head h, first dimension d;
// grid-stride over the N * H * hd / W runs.
template <class F>
__device__ __forceinline__ void forHeadRuns(int N, int T_, int H, int hd, int w, F&& f) {
  byWidth(w, [&](auto W) {
    const int per = hd / decltype(W)::value;
    const size_t runs = (size_t)N * H * per, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < runs; e += stride) {
      const size_t nh = e / per;
      const int n = (int)(nh / H);
      f(n, (int)(nh % H), n / T_, n % T_, (int)(e % per) * decltype(W)::value, W);
    }
  });
}

// qkv ([N, 3D] = [B, T, H, 3, hd]) + bias (null when the product added it) -> q, k, v
// [B, H, T, hd] (heads layout), with rotary on the first 2 * half dims of q and k (HF's
// half-split rotation).
template <class In, class T>
__global__ void splitHeadsKernel(const In* qkv, const float* bias, const float* cs, const float* sn, T* q, T* k, T* v,
                                 int N, int T_, int H, int hd, int half) {
  const int w = runWidth<T>((uintptr_t)qkv | (uintptr_t)bias | (uintptr_t)cs | (uintptr_t)sn | (uintptr_t)q |
                                (uintptr_t)k | (uintptr_t)v, hd, half);
  forHeadRuns(N, T_, H, hd, w, [&](int n, int h, int b, int t, int d, auto W) {
    constexpr int r = decltype(W)::value;
    const size_t src = (size_t)n * 3 * H * hd + (size_t)h * 3 * hd;
    const int hb = h * 3 * hd;
    const size_t dst = (((size_t)b * H + h) * T_ + t) * hd + d;
    const auto at = [&](int j) { return bias ? loadVec<r>(qkv + src + j) + loadVec<r>(bias + hb + j) : loadVec<r>(qkv + src + j); };
    T* outs[2] = {q, k};
    for (int part = 0; part < 2; part++) {
      const int o = part * hd;
      Vec<r> val;
      if (d < 2 * half) {
        const int i = d < half ? d : d - half;
        val = rotate(at(o + i), at(o + i + half), loadVec<r>(cs + (size_t)t * half + i), loadVec<r>(sn + (size_t)t * half + i), d < half);
      } else {
        val = at(o + d);
      }
      storeVec(outs[part] + dst, val);
    }
    storeVec(v + dst, at(2 * hd + d));
  });
}

// Gradients of q, k, v (fp32, heads layout) -> dqkv [N, 3D] (T: what the products and the bias
// gradient's column sums read), rotary undone; runs as splitHeadsKernel's.
template <class T>
__global__ void mergeHeadsGradKernel(const float* dq, const float* dk, const float* dv, const float* cs, const float* sn,
                                     T* out, int N, int T_, int H, int hd, int half) {
  const int w = runWidth<T>((uintptr_t)dq | (uintptr_t)dk | (uintptr_t)dv | (uintptr_t)cs | (uintptr_t)sn | (uintptr_t)out, hd, half);
  forHeadRuns(N, T_, H, hd, w, [&](int n, int h, int b, int t, int d, auto W) {
    constexpr int r = decltype(W)::value;
    const size_t base = (((size_t)b * H + h) * T_ + t) * hd;
    const size_t dst = (size_t)n * 3 * H * hd + (size_t)h * 3 * hd;
    const float* ins[2] = {dq, dk};
    for (int part = 0; part < 2; part++) {
      const float* g = ins[part] + base;
      Vec<r> val;
      if (d < 2 * half) {
        // the inverse rotation: the sine's sign flipped
        const int i = d < half ? d : d - half;
        Vec<r> s = loadVec<r>(sn + (size_t)t * half + i);
CPT_UNROLL
        for (int e = 0; e < r; e++) s.v[e] = -s.v[e];
        val = rotate(loadVec<r>(g + i), loadVec<r>(g + i + half), loadVec<r>(cs + (size_t)t * half + i), s, d < half);
      } else {
        val = loadVec<r>(g + d);
      }
      storeVec(out + dst + part * hd + d, val);
    }
    storeVec(out + dst + 2 * hd + d, loadVec<r>(dv + base + d));
  });
}

// Heads layout <-> rows: y [N, D] from yh [B, H, T, hd], or dyh [B, H, T, hd] from dy [N, D], by
// the heads' runs.
template <bool ToRows, class T>
__device__ __forceinline__ void headsCopy(const T* src, T* dst, int N, int T_, int H, int hd) {
  const int w = runWidth<T>((uintptr_t)src | (uintptr_t)dst, hd);
  forHeadRuns(N, T_, H, hd, w, [&](int n, int h, int b, int t, int d, auto W) {
    const size_t rowsAt = (size_t)n * H * hd + h * hd + d, headsAt = (((size_t)b * H + h) * T_ + t) * hd + d;
    const size_t from = ToRows ? headsAt : rowsAt, to = ToRows ? rowsAt : headsAt;
    storeVec(dst + to, loadVec<decltype(W)::value>(src + from));
  });
}
template <class T>
__global__ void mergeHeadsKernel(const T* yh, T* y, int N, int T_, int H, int hd) {
  headsCopy<true>(yh, y, N, T_, H, hd);
}
template <class T>
__global__ void splitGradKernel(const T* dy, T* dyh, int N, int T_, int H, int hd) {
  headsCopy<false>(dy, dyh, N, T_, H, hd);
}

// Causal softmax of one block of query rows [i0, i0 + rows) against keys [0, cols): S [B*H, rows,
// ld] (fp32, already scaled) -> P [B*H, rows, ld] (T), lse [B*H, T] at the block's rows. grid
// (rows, B * H). The row is read from HBM once: each thread keeps kRowPer of its elements in
// registers (cols up to kRowPer * blockDim.x; longer rows read S again), in runs of runWidth's
// (16-byte accesses to P) where ld and the pointers allow. A run may reach past lim (those
// elements are selected away, never computed with) and past cols into the row's padding (zeros
// are written there).
constexpr int kRowPer = 8;
template <class T>
__global__ void softmaxKernel(const float* S, T* P, float* lse, int rows, int cols, int ld, int i0, int T_) {
  CPT_DYNAMIC_SMEM(float, sh);  // kSumSmem
  const size_t row = (size_t)blockIdx.y * rows + blockIdx.x;
  const int i = i0 + blockIdx.x, lim = i + 1;
  const float* s = S + row * ld;
  MaxSum a;
  if (cols <= kRowPer * (int)blockDim.x) {  // the same for every thread of the block
    byWidth(runWidth<T>((uintptr_t)S | (uintptr_t)P, ld), [&](auto Wc) {
      constexpr int W = decltype(Wc)::value, R = kRowPer / W;
      // The thread's max first, then its exps independent of one another (MaxSum::add chains them).
      Vec<W> v[R];
CPT_UNROLL
      for (int k = 0; k < R; k++) {
        const int j = W * (threadIdx.x + k * blockDim.x);
        v[k] = j < lim ? loadVec<W>(s + j) : zeroVec<W>();
CPT_UNROLL
        for (int e = 0; e < W; e++) v[k].v[e] = j + e < lim ? v[k].v[e] : -INFINITY, a.m = fmaxf(a.m, v[k].v[e]);
      }
CPT_UNROLL
      for (int k = 0; k < R; k++)
CPT_UNROLL
        for (int e = 0; e < W; e++)
          if ((int)(W * (threadIdx.x + k * blockDim.x)) + e < lim) a.s += expf(v[k].v[e] - a.m);
      const float l = blockLse(a, sh);
      if (threadIdx.x == 0) lse[(size_t)blockIdx.y * T_ + i] = l;
CPT_UNROLL
      for (int k = 0; k < R; k++) {
        const int j = W * (threadIdx.x + k * blockDim.x);
        if (j >= cols) continue;
CPT_UNROLL
        for (int e = 0; e < W; e++) v[k].v[e] = expf(v[k].v[e] - l);  // past lim: exp(-inf) = 0
        storeVec(P + row * ld + j, v[k]);
      }
    });
    return;
  }
  for (int j = threadIdx.x; j < lim; j += blockDim.x) a.add(s[j]);
  const float l = blockLse(a, sh);
  if (threadIdx.x == 0) lse[(size_t)blockIdx.y * T_ + i] = l;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) P[row * ld + j] = fromF<T>(j < lim ? expf(s[j] - l) : 0.f);
}

// Backward of the same block: P = exp(S - lse) recomputed, dS = P * (dP - sum_j P dP) * scale;
// S, dP and P kept in registers, by runs, as the forward does.
template <class T>
__global__ void softmaxBackKernel(const float* S, const float* dP, const float* lse, T* P, T* dS, int rows, int cols,
                                  int ld, int i0, int T_, float scale) {
  CPT_DYNAMIC_SMEM(float, sh);  // kSumSmem
  const size_t row = (size_t)blockIdx.y * rows + blockIdx.x;
  const int i = i0 + blockIdx.x, lim = i + 1;
  const float l = lse[(size_t)blockIdx.y * T_ + i];
  const float* s = S + row * ld;
  const float* dp = dP + row * ld;
  float dot = 0;
  if (cols <= kRowPer * (int)blockDim.x) {
    byWidth(runWidth<T>((uintptr_t)S | (uintptr_t)dP | (uintptr_t)P | (uintptr_t)dS, ld), [&](auto Wc) {
      constexpr int W = decltype(Wc)::value, R = kRowPer / W;
      Vec<W> p[R], g[R];
CPT_UNROLL
      for (int k = 0; k < R; k++) {
        const int j = W * (threadIdx.x + k * blockDim.x);
        p[k] = j < lim ? loadVec<W>(s + j) : zeroVec<W>(), g[k] = j < lim ? loadVec<W>(dp + j) : zeroVec<W>();
CPT_UNROLL
        for (int e = 0; e < W; e++) {
          const bool in = j + e < lim;
          p[k].v[e] = in ? expf(p[k].v[e] - l) : 0.f, g[k].v[e] = in ? g[k].v[e] : 0.f;
          dot += p[k].v[e] * g[k].v[e];
        }
      }
      dot = blockSum(dot, sh);
CPT_UNROLL
      for (int k = 0; k < R; k++) {
        const int j = W * (threadIdx.x + k * blockDim.x);
        if (j >= cols) continue;
        Vec<W> d;
CPT_UNROLL
        for (int e = 0; e < W; e++) d.v[e] = p[k].v[e] * (g[k].v[e] - dot) * scale;
        storeVec(P + row * ld + j, p[k]), storeVec(dS + row * ld + j, d);
      }
    });
    return;
  }
  for (int j = threadIdx.x; j < lim; j += blockDim.x) dot += expf(s[j] - l) * dp[j];
  dot = blockSum(dot, sh);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    const float p = j < lim ? expf(s[j] - l) : 0.f;
    P[row * ld + j] = fromF<T>(p);
    dS[row * ld + j] = fromF<T>(p * (dp[j] - dot) * scale);
  }
}

// The same softmax and its backward with one warp per row (CPT_CUDA_SOFTMAX=warp; not yet
// measured on a GPU): eight rows per block reduced by shuffles, no barriers (a block per row
// spends its short life on four of them), each lane taking runs of kVec<T> keys (16-byte accesses
// to P) 32 runs apart; the row is read twice, the second time from cache. Positions past lim are
// selected away, never computed with; a run reaching past cols writes zeros into the row's
// padding (ld is a multiple of 8, the rows 16-byte aligned). grid (ceil(rows / 8), B * H), block 256.
template <class T>
__global__ void softmaxWarpKernel(const float* S, T* P, float* lse, int rows, int cols, int ld, int i0, int T_) {
  constexpr int W = kVec<T>;
  const int r = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (r >= rows) return;  // whole warps leave together
  const size_t row = (size_t)blockIdx.y * rows + r;
  const int i = i0 + r, lim = i + 1;
  const float* s = S + row * ld;
  float m = -INFINITY, sum = 0.f;  // the lane's running max and sum of exp(x - m)
  for (int j = W * lane; j < lim; j += 32 * W) {
    const Vec<W> x = loadVec<W>(s + j);
    float mm = m, add = 0.f;
    for (int k = 0; k < W; k++) mm = j + k < lim ? fmaxf(mm, x.v[k]) : mm;
    for (int k = 0; k < W; k++) add += j + k < lim ? expf(x.v[k] - mm) : 0.f;
    sum = (m == -INFINITY ? 0.f : sum * expf(m - mm)) + add;
    m = mm;
  }
  const float M = warpMax(m);
  const float l = M + logf(warpSum(m == -INFINITY ? 0.f : sum * expf(m - M)));
  if (lane == 0) lse[(size_t)blockIdx.y * T_ + i] = l;
  for (int j = W * lane; j < cols; j += 32 * W) {
    Vec<W> p = loadVec<W>(s + j);
    for (int k = 0; k < W; k++) p.v[k] = j + k < lim ? expf(p.v[k] - l) : 0.f;
    storeVec(P + row * ld + j, p);
  }
}
template <class T>
__global__ void softmaxBackWarpKernel(const float* S, const float* dP, const float* lse, T* P, T* dS, int rows, int cols,
                                      int ld, int i0, int T_, float scale) {
  constexpr int W = kVec<T>;
  const int r = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (r >= rows) return;
  const size_t row = (size_t)blockIdx.y * rows + r;
  const int i = i0 + r, lim = i + 1;
  const float l = lse[(size_t)blockIdx.y * T_ + i];
  const float *s = S + row * ld, *dp = dP + row * ld;
  float dot = 0.f;
  for (int j = W * lane; j < lim; j += 32 * W) {
    const Vec<W> x = loadVec<W>(s + j), g = loadVec<W>(dp + j);
    for (int k = 0; k < W; k++) dot += j + k < lim ? expf(x.v[k] - l) * g.v[k] : 0.f;
  }
  dot = warpSum(dot);
  for (int j = W * lane; j < cols; j += 32 * W) {
    Vec<W> p = loadVec<W>(s + j), d = loadVec<W>(dp + j);
    for (int k = 0; k < W; k++) {
      p.v[k] = j + k < lim ? expf(p.v[k] - l) : 0.f;
      d.v[k] = j + k < lim ? p.v[k] * (d.v[k] - dot) * scale : 0.f;
    }
    storeVec(P + row * ld + j, p), storeVec(dS + row * ld + j, d);
  }
}

// h (fp32 [N, I], without bias) + bias -> h1 (pre-activation, T) and g = gelu(h1) (T), by runs
// (a run's elements share one bias load; I a multiple of the run).
template <class T>
__global__ void biasGeluKernel(const float* h, const float* bias, T* h1, T* g, size_t n, int I, bool exact) {
  const int w = runWidth<T>((uintptr_t)h | (uintptr_t)bias | (uintptr_t)h1 | (uintptr_t)g, I);
  forRuns(n, w, [&](size_t i, auto W) {
    constexpr int k = decltype(W)::value;
    Vec<k> pre = loadVec<k>(h + i), out;
    const Vec<k> b = loadVec<k>(bias + i % I);
CPT_UNROLL
    for (int e = 0; e < k; e++) pre.v[e] += b.v[e], out.v[e] = gelu(pre.v[e], exact);
    storeVec(h1 + i, pre), storeVec(g + i, out);
  });
}
// g = gelu(h1), h1 the product's output with its bias (T), by runs.
template <class T>
__global__ void geluKernel(const T* h1, T* g, size_t n, bool exact) {
  forRuns(n, runWidth<T>((uintptr_t)h1 | (uintptr_t)g, 0), [&](size_t i, auto W) {
    constexpr int k = decltype(W)::value;
    Vec<k> x = loadVec<k>(h1 + i);
CPT_UNROLL
    for (int e = 0; e < k; e++) x.v[e] = gelu(x.v[e], exact);
    storeVec(g + i, x);
  });
}
// dh = dg * gelu'(h1), all in T, by runs.
template <class T>
__global__ void geluBackKernel(const T* dg, const T* h1, T* dh, size_t n, bool exact) {
  forRuns(n, runWidth<T>((uintptr_t)dg | (uintptr_t)h1 | (uintptr_t)dh, 0), [&](size_t i, auto W) {
    constexpr int k = decltype(W)::value;
    Vec<k> d = loadVec<k>(dg + i);
    const Vec<k> x = loadVec<k>(h1 + i);
CPT_UNROLL
    for (int e = 0; e < k; e++) d.v[e] *= geluGrad(x.v[e], exact);
    storeVec(dh + i, d);
  });
}

// Residual sums (fp32). out = (a + ab) + x; or, parallel residual, out = (m + mb) + (a + ab) + x
// (the order HF adds them in). Four elements per thread and step where D allows, else one.
__device__ __forceinline__ float residual1(float a, float ab, const float* m, float mm, float mb, float x) {
  const float att = a + ab;
  return m ? (mm + mb) + att + x : att + x;
}
__global__ void residualKernel(const float* a, const float* ab, const float* m, const float* mb, const float* x,
                               float* out, size_t n, int D) {
  const size_t stride = (size_t)gridDim.x * blockDim.x, first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (D % 4 == 0) {
    for (size_t i = first; i < n / 4; i += stride) {
      const int j = (int)((4 * i) % D);
      const float4 av = load4(a + 4 * i), abv = load4(ab + j), xv = load4(x + 4 * i);
      const float4 mv = m ? load4(m + 4 * i) : float4{}, mbv = m ? load4(mb + j) : float4{};
      store4(out + 4 * i, float4{residual1(av.x, abv.x, m, mv.x, mbv.x, xv.x), residual1(av.y, abv.y, m, mv.y, mbv.y, xv.y),
                                 residual1(av.z, abv.z, m, mv.z, mbv.z, xv.z), residual1(av.w, abv.w, m, mv.w, mbv.w, xv.w)});
    }
    return;
  }
  for (size_t i = first; i < n; i += stride) {
    const int j = (int)(i % D);
    out[i] = residual1(a[i], ab[j], m, m ? m[i] : 0.f, m ? mb[j] : 0.f, x[i]);
  }
}

// Cross-entropy of row r (position t of its sequence) from its logits l (fp32 [V]), one block:
// the loss into rowLoss[r]; mode 1 also dlogits = (softmax - onehot) * gs into d (T), mode 2
// log p(target) into lp [B, T_ - 1]. The last position of each sequence predicts nothing. l is read
// once for the log-sum-exp and once more for the gradient, four at a time when V allows.
template <class T>
__device__ __forceinline__ void crossEntropyRow(const float* l, const int32_t* ids, int r, int T_, int V, int mode, float gs,
                                                double* rowLoss, float* lp, T* d, float* sh) {
  const int t = r % T_;
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
  const float lse = blockLse(a, sh), lt = l[tgt];  // (staged: another thread's copy, after blockLse's barriers)
  if (threadIdx.x == 0) {
    rowLoss[r] = (double)lse - (double)lt;
    if (mode == 2) lp[(size_t)(r / T_) * (T_ - 1) + t] = lt - lse;
  }
  if (mode != 1) return;
  const auto grad = [&](float x, int j) { return expf(x - lse) * gs - (j == tgt ? gs : 0.f); };
  for (int j = threadIdx.x; j < v4; j += blockDim.x) {
    const float4 x = load4(l + 4 * j);
    store4(d + 4 * j, float4{grad(x.x, 4 * j), grad(x.y, 4 * j + 1), grad(x.z, 4 * j + 2), grad(x.w, 4 * j + 3)});
  }
  for (int j = 4 * v4 + threadIdx.x; j < V; j += blockDim.x) d[j] = fromF<T>(grad(l[j], j));
}
// Rows [r0, r0 + gridDim.x) from their logits (fp32 [rows, V]), each read from HBM twice (mode 1).
template <class T>
__global__ void crossEntropyKernel(const float* logits, const int32_t* ids, int r0, int T_, int V, int mode, float gs,
                                   double* rowLoss, float* lp, T* dl) {
  CPT_DYNAMIC_SMEM(float, sh);  // kSumSmem
  const int i = blockIdx.x;
  crossEntropyRow<T>(logits + (size_t)i * V, ids, r0 + i, T_, V, mode, gs, rowLoss, lp, dl + (size_t)i * V, sh);
}
// Training's (mode 1) with each row staged in shared memory (kSumSmem, then V floats; V % 4 ==
// 0): the logits are read from HBM once, by 16-byte cp.async copies that all go out before any is
// waited for; then crossEntropyRow on the copy, so the loss and gradient are crossEntropyKernel's bits.
template <class T>
__global__ void crossEntropyRowKernel(const float* logits, const int32_t* ids, int r0, int T_, int V, float gs,
                                      double* rowLoss, T* dl) {
  CPT_DYNAMIC_SMEM(float, sh);
  const int i = blockIdx.x, r = r0 + i;
  const float* l = logits + (size_t)i * V;
  if (r % T_ != T_ - 1) {  // the last position reads nothing
    float* row = sh + kSumSmem / sizeof(float);
    for (int j = threadIdx.x; j < V / 4; j += blockDim.x) cpAsync16(row + 4 * j, l + 4 * j);
    cpAsyncCommit();
    cpAsyncWait<0>();  // this thread's copies have landed: it reads only those before the barriers in blockLse
    l = row;
  }
  crossEntropyRow<T>(l, ids, r, T_, V, 1, gs, rowLoss, nullptr, dl + (size_t)i * V, sh);
}
// Its dynamic shared memory.
inline size_t crossEntropyRowSmem(int V) { return kSumSmem + (size_t)V * sizeof(float); }

// The embedding gradient's rows grouped by token without atomics or the host: a stable LSD radix
// sort of the token ids, 8 bits a pass, carrying each id's row, so that rows stay ascending within
// a token (std::stable_sort's order). Tiles of `tile` ids in shared memory, one thread per digit
// value: thread d walks its tile in order, so equal digits keep their order. Counts are
// [digit][tile], so their exclusive scan is where each (digit, tile) run starts.
constexpr int kRadix = 256;
__global__ void radixCountKernel(const int32_t* keys, int n, int tile, int shift, int32_t* counts) {
  CPT_DYNAMIC_SMEM(int32_t, sk);
  const int t = blockIdx.x, base = t * tile, m = min(tile, n - base), d = threadIdx.x;
  for (int i = threadIdx.x; i < m; i += blockDim.x) sk[i] = keys[base + i];
  __syncthreads();
  int c = 0;
  for (int i = 0; i < m; i++) c += ((sk[i] >> shift) & (kRadix - 1)) == d;
  counts[d * gridDim.x + t] = c;
}
// Exclusive prefix sum of x[0, n) in place, one block: a contiguous run per thread (shared
// memory: an int per thread).
__global__ void exclusiveScanKernel(int32_t* x, int n) {
  CPT_DYNAMIC_SMEM(int32_t, sh);
  const int per = (n + blockDim.x - 1) / blockDim.x, a = min(n, (int)threadIdx.x * per), b = min(n, a + per);
  int s = 0;
  for (int i = a; i < b; i++) s += x[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int i = 0, run = 0; i < (int)blockDim.x; i++) {
      const int v = sh[i];
      sh[i] = run, run += v;
    }
  __syncthreads();
  for (int i = a, run = sh[threadIdx.x]; i < b; i++) {
    const int v = x[i];
    x[i] = run, run += v;
  }
}
// One pass: ids and their rows (rows null: the ids' own positions) to where the scanned counts say.
__global__ void radixScatterKernel(const int32_t* keys, const int32_t* rows, int n, int tile, int shift,
                                   const int32_t* starts, int32_t* keysOut, int32_t* rowsOut) {
  CPT_DYNAMIC_SMEM(int32_t, sk);
  const int t = blockIdx.x, base = t * tile, m = min(tile, n - base), d = threadIdx.x;
  for (int i = threadIdx.x; i < m; i += blockDim.x) sk[i] = keys[base + i];
  __syncthreads();
  int o = starts[d * gridDim.x + t];
  for (int i = 0; i < m; i++)
    if (((sk[i] >> shift) & (kRadix - 1)) == d) {
      keysOut[o] = sk[i];
      rowsOut[o] = rows ? rows[base + i] : base + i;
      o++;
    }
}
// Block k, when sorted position k starts a token's run, adds the run's rows of dX (ascending) to
// that token's gradient row; the other blocks return. grid = n.
__global__ void embedBackKernel(const int32_t* keys, const int32_t* rows, int n, const float* dX, float* gE, int D) {
  const int k = blockIdx.x, tok = keys[k];
  if (k > 0 && keys[k - 1] == tok) return;
  int e = k + 1;
  while (e < n && keys[e] == tok) e++;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    float acc = gE[(size_t)tok * D + j];
    for (int q = k; q < e; q++) acc += dX[(size_t)rows[q] * D + j];
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

// *out = the sum of x[0, n) by one block in a fixed order: the loss over rows, the squared
// gradient norm over sumSquaresKernel's partials.
__global__ void sumKernel(const double* x, int n, double* out) {
  CPT_DYNAMIC_SMEM(double, sh);  // kSumSmem
  double s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
  s = blockSum(s, sh);
  if (threadIdx.x == 0) *out = s;
}

// Sum of squares of the gradient, one double per block (a fixed grid: fixed order).
__global__ void sumSquaresKernel(const float* g, size_t n, double* part) {
  CPT_DYNAMIC_SMEM(double, sh);  // kSumSmem
  double s = 0;
  // 16-byte loads (four times the bytes in flight per thread: a scalar loop is latency-bound), the tail one by one
  const size_t stride = (size_t)gridDim.x * blockDim.x, first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  const size_t n4 = (uintptr_t)g % 16 == 0 ? n / 4 : 0;
  for (size_t i = first; i < n4; i += stride) {
    const float4 v = load4(g + 4 * i);
    s += ((double)v.x * v.x + (double)v.y * v.y) + ((double)v.z * v.z + (double)v.w * v.w);
  }
  for (size_t i = 4 * n4 + first; i < n; i += stride) s += (double)g[i] * g[i];
  s = blockSum(s, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// torch.optim.AdamW, as the CPU engine computes it: clip coefficient, decoupled decay first,
// bias-corrected moments; zeroes the gradient and, when wT is set, writes the bf16 copy of the
// weights the products read (no separate cast). Every tensor in one launch: the flat parameters
// [0, n) are cut into chunks that each lie in one tensor, block k updating chunk k with weight
// decay when the chunk's tensor has it (2-D weights); four elements per thread and step over a
// chunk's aligned body. The clip coefficient comes from the squared norm on the device (no host
// round trip); a norm that is not finite updates nothing. The gradient is left as it is: the next
// backward overwrites it (the engine's fresh_).
struct AdamChunk {
  size_t begin, end;
  int decay;
};
constexpr size_t kAdamChunk = 16384;  // elements per block: 16 steps of 256 threads x 4
struct AdamCoef {
  float coef, b1, b2, eps, stepSize, bc2s, decay;  // coef: set from normSq in the kernel
  double clip;                                      // <= 0: no clipping
};
__device__ __forceinline__ float adam1(float& w, float g, float& m, float& v, float dec, const AdamCoef& c) {
  const float gi = g * c.coef, p = w * dec;
  m = c.b1 * m + (1 - c.b1) * gi;
  v = c.b2 * v + (1 - c.b2) * gi * gi;
  return w = p - c.stepSize * m / (sqrtf(v) / c.bc2s + c.eps);
}
template <class T>
__global__ void adamwKernel(float* w, const float* g, float* m, float* v, size_t n, const AdamChunk* chunks, AdamCoef c,
                            const double* normSq, T* wT) {
  const AdamChunk k = chunks[blockIdx.x];
  const float dec = k.decay ? c.decay : 1.f;  // w * 1 is w: the same update as without decay
  const size_t end = k.end < n ? k.end : n, a = ((k.begin + 3) / 4 * 4 < end ? (k.begin + 3) / 4 * 4 : end);
  const size_t b = end / 4 * 4 > a ? end / 4 * 4 : a;
  const double norm = sqrt(*normSq);
  if (!isfinite(norm)) return;
  c.coef = c.clip > 0 ? (float)fmin(1.0, c.clip / (norm + 1e-6)) : 1.f;  // adamStep's (model.h)
  const auto one = [&](size_t i) {
    const float wi = adam1(w[i], g[i], m[i], v[i], dec, c);
    if (wT) wT[i] = fromF<T>(wi);
  };
  for (size_t i = k.begin + threadIdx.x; i < a; i += blockDim.x) one(i);
  for (size_t i = a + 4 * threadIdx.x; i < b; i += 4 * blockDim.x) {
    float4 wv = load4(w + i), gv = load4(g + i), mv = load4(m + i), vv = load4(v + i);
    adam1(wv.x, gv.x, mv.x, vv.x, dec, c), adam1(wv.y, gv.y, mv.y, vv.y, dec, c);
    adam1(wv.z, gv.z, mv.z, vv.z, dec, c), adam1(wv.w, gv.w, mv.w, vv.w, dec, c);
    store4(w + i, wv), store4(m + i, mv), store4(v + i, vv);
    if (wT) store4(wT + i, wv);
  }
  for (size_t i = b + threadIdx.x; i < end; i += blockDim.x) one(i);
}

}  // namespace cuda
}  // namespace cpt
