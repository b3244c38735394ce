// Tensor-core tiles for the attention on mma.sync tiles (attention.cuh), in PTX: asynchronous
// copies into shared memory (cp.async), fragment loads from it (ldmatrix) and the m16n8k16 bf16
// product (mma.sync), in their documented layouts, and the exponential its softmax takes (ex2).
// The simulator models each (sim/mma.h, sim/runtime.cpp).
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>
#ifndef __CUDACC__
#include <mma.h>  // the simulator's mma.sync and ldmatrix (sim/mma.h)
#endif

namespace cpt {
namespace cuda {

// 16 bytes from global to shared memory without passing through registers; they land only when
// cpAsyncWait lets them (and other threads see them after a barrier). cpAsyncCommit closes this
// thread's group of copies; cpAsyncWait<N> waits until at most N of its groups are in flight.
__device__ __forceinline__ void cpAsync16(void* dst, const void* src) {
#ifdef __CUDACC__
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(static_cast<unsigned>(__cvta_generic_to_shared(dst))), "l"(src));
#else
  ::cpt_sim::cpAsync(dst, src, 16);
#endif
}
// 4 bytes likewise (cp.async.ca: the .cg form takes 16 only).
__device__ __forceinline__ void cpAsync4(void* dst, const void* src) {
#ifdef __CUDACC__
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(static_cast<unsigned>(__cvta_generic_to_shared(dst))), "l"(src));
#else
  ::cpt_sim::cpAsync(dst, src, 4);
#endif
}
__device__ __forceinline__ void cpAsyncCommit() {
#ifdef __CUDACC__
  asm volatile("cp.async.commit_group;\n" ::);
#else
  ::cpt_sim::cpAsyncCommit();
#endif
}
template <int N>
__device__ __forceinline__ void cpAsyncWait() {
#ifdef __CUDACC__
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#else
  ::cpt_sim::cpAsyncWait(N);
#endif
}

// d += a b on one 16x8x16 bf16 tile, fp32 accumulation, in PTX's documented fragment layout
// (sim/mma.h spells it out and models it); b0, b1: the B fragment's two registers.
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef __CUDACC__
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  const uint32_t b[2] = {b0, b1};
  ::cpt_sim::mma16816(d, a, b, d);
#endif
}
// d0 += a b for the first 8-column tile of b (fragB, fragBt), d1 += a b for the second.
__device__ __forceinline__ void mma2(float (&d0)[4], float (&d1)[4], const uint32_t (&a)[4], const uint32_t (&b)[4]) {
  mma16816(d0, a, b[0], b[1]);
  mma16816(d1, a, b[2], b[3]);
}
// Four 8x8 bf16 matrices from shared memory into fragment registers, this lane giving the address
// of one row (PTX's ldmatrix, sim/mma.h models it); Trans loads each matrix transposed.
template <bool Trans>
__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const __nv_bfloat16* row) {
#ifdef __CUDACC__
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
#else
  ::cpt_sim::ldmatrix4(r, row, Trans);
#endif
}
// Operand fragments of mma16816 from bf16 tiles in shared memory (row length ld, rows 16-byte
// aligned), one ldmatrix each. fragA: A = the 16 x 16 tile at p.
__device__ __forceinline__ void fragA(uint32_t (&a)[4], const __nv_bfloat16* p, int ld) {
  const int lane = threadIdx.x & 31;
  ldsm4<false>(a, p + (lane & 15) * ld + (lane >> 4) * 8);
}
// fragBt: B of two 8-column tiles (16 deep) = the transpose of the 16 x 16 tile at p, tile j's
// columns being rows 8j to 8j + 7 (K for Q K^T).
__device__ __forceinline__ void fragBt(uint32_t (&b)[4], const __nv_bfloat16* p, int ld) {
  const int lane = threadIdx.x & 31;
  ldsm4<false>(b, p + ((lane >> 4) * 8 + (lane & 7)) * ld + ((lane >> 3) & 1) * 8);
}
// fragB: B of two 8-column tiles = the 16 x 16 tile at p itself, the depth down its rows (V for P V).
__device__ __forceinline__ void fragB(uint32_t (&b)[4], const __nv_bfloat16* p, int ld) {
  const int lane = threadIdx.x & 31;
  ldsm4<true>(b, p + (lane & 15) * ld + (lane >> 4) * 8);
}

// 2^x on the special-function unit (PTX ex2.approx.ftz.f32; subnormals flushed to zero): one
// instruction, and one multiply-add before it folds in the scale and the subtracted maximum, where
// expf's range reduction takes about ten (FlashAttention's exp2 with log2(e) in the scale).
__device__ __forceinline__ float ex2(float x) {
#ifdef __CUDACC__
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
#else
  return ::cpt_sim::ex2Approx(x);
#endif
}
constexpr float kLog2e = 1.4426950408889634f;

}  // namespace cuda
}  // namespace cpt
