// The subset of CUDA's warp matrix API (nvcuda::wmma, <mma.h>) the engine uses: 16x16x16 tiles,
// bf16 operands, fp32 accumulators. A fragment's elements are spread over the warp's lanes in an
// order of the simulator's own (a fixed scramble of the tile), as on a GPU, where the order is
// unspecified: code that reads a fragment's elements as if it knew their rows and columns gets
// wrong values here. Every call is checked as the hardware requires: all 32 lanes of the warp
// (mma_sync meets them at a warp barrier), 32-byte aligned pointers, ldm a multiple of 16 bytes.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the simulator models 16x16x16 tiles");
  static constexpr int num_elements = 8;  // 256 elements over 32 lanes
  T x[num_elements];
};

namespace detail {
// Element e of lane L is tile element slot(L, e) = row * 16 + column: a bijection of the 256.
inline int slot(int lane, int e) { return ((lane * 8 + e) * 37 + 11) & 255; }
inline int lane() {
  const dim3 t = threadIdx, b = blockDim;
  return (int)((t.x + b.x * (t.y + b.y * t.z)) & 31);
}
inline int warp() {
  const dim3 t = threadIdx, b = blockDim;
  if ((b.x * b.y * b.z) % 32) throw std::runtime_error("wmma: the block's size is not a whole number of warps");
  return (int)((t.x + b.x * (t.y + b.y * t.z)) >> 5);
}
inline void check(const void* p, unsigned ldm, size_t esize, const char* what) {
  if ((uintptr_t)p % 32) throw std::runtime_error(std::string("wmma: ") + what + " pointer is not 32-byte aligned");
  if ((ldm * esize) % 16) throw std::runtime_error(std::string("wmma: ") + what + " ldm is not a multiple of 16 bytes");
}
inline float f(float v) { return v; }
inline float f(__nv_bfloat16 v) { return __bfloat162float(v); }
// Element (r, c) of a tile stored with leading dimension ldm.
template <class T>
T at(const T* p, unsigned ldm, int r, int c, bool rowMajor) {
  return rowMajor ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
}
}  // namespace detail

template <class Use, class T, class L>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, L>& a, const T* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulators load with a layout");
  detail::check(p, ldm, sizeof(T), "load_matrix_sync");
  const bool rowMajor = std::is_same<L, row_major>::value;
  for (int e = 0; e < 8; e++) {
    const int s = detail::slot(detail::lane(), e);
    a.x[e] = detail::at(p, ldm, s / 16, s % 16, rowMajor);
  }
  __syncwarp();
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& a, const float* p, unsigned ldm, layout_t l) {
  detail::check(p, ldm, 4, "load_matrix_sync");
  for (int e = 0; e < 8; e++) {
    const int s = detail::slot(detail::lane(), e);
    a.x[e] = detail::at(p, ldm, s / 16, s % 16, l == mem_row_major);
  }
  __syncwarp();
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& a, unsigned ldm, layout_t l) {
  detail::check(p, ldm, 4, "store_matrix_sync");
  __syncwarp();
  for (int e = 0; e < 8; e++) {
    const int s = detail::slot(detail::lane(), e);
    (l == mem_row_major ? p[(size_t)(s / 16) * ldm + s % 16] : p[(size_t)(s % 16) * ldm + s / 16]) = a.x[e];
  }
  __syncwarp();
}
template <class Use, class T, class L>
void fill_fragment(fragment<Use, 16, 16, 16, T, L>& a, T v) {
  for (int e = 0; e < 8; e++) a.x[e] = v;
}

// d = a b + c, fp32 accumulation: the lanes post their elements, meet, and each computes its own
// elements of d from the whole tiles (d may be c).
template <class T, class LA, class LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
              const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  float(*t)[256] = reinterpret_cast<float(*)[256]>(::cpt_sim::warpTiles(detail::warp()));  // a, b, c
  const int ln = detail::lane();
  for (int e = 0; e < 8; e++) {
    const int s = detail::slot(ln, e);
    t[0][s] = detail::f(a.x[e]), t[1][s] = detail::f(b.x[e]), t[2][s] = c.x[e];
  }
  __syncwarp();
  float out[8];
  for (int e = 0; e < 8; e++) {
    const int s = detail::slot(ln, e), r = s / 16, col = s % 16;
    float acc = t[2][s];
    for (int k = 0; k < 16; k++) acc += t[0][r * 16 + k] * t[1][k * 16 + col];
    out[e] = acc;
  }
  __syncwarp();  // every lane has read the tiles before any lane's next mma overwrites them
  for (int e = 0; e < 8; e++) d.x[e] = out[e];
}

}  // namespace wmma
}  // namespace nvcuda

namespace cpt_sim {
// PTX's mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d = a b + c, in the fragment layout
// PTX documents (unlike wmma's, code may rely on it): with g = lane / 4 and q = lane % 4, a (16x16,
// four 32-bit registers of two bf16, the lower column in the lower half) holds rows g and g + 8 at
// columns 2q, 2q + 1 and 2q + 8, 2q + 9 (a0: g, 2q; a1: g + 8, 2q; a2: g, 2q + 8; a3: g + 8, 2q + 8);
// b (16x8) holds rows 2q, 2q + 1 (b0) and 2q + 8, 2q + 9 (b1) of column g; c and d (16x8, fp32)
// rows g (c0, c1) and g + 8 (c2, c3) at columns 2q, 2q + 1. All 32 lanes meet, as on a GPU.
inline void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
  namespace w = nvcuda::wmma::detail;
  float(*t)[256] = reinterpret_cast<float(*)[256]>(warpTiles(w::warp()));  // a [16][16], b [16][8], c [16][8]
  const int ln = w::lane(), g = ln >> 2, q = ln & 3;
  const auto half = [](uint32_t v, int hi) {
    __nv_bfloat16 x;
    x.__x = (unsigned short)(hi ? v >> 16 : v & 0xffffu);
    return __bfloat162float(x);
  };
  for (int i = 0; i < 4; i++) {
    const int r = g + (i & 1) * 8, col = 2 * q + (i >> 1) * 8;
    t[0][r * 16 + col] = half(a[i], 0), t[0][r * 16 + col + 1] = half(a[i], 1);
  }
  for (int i = 0; i < 2; i++) {
    const int k = 2 * q + i * 8;
    t[1][k * 8 + g] = half(b[i], 0), t[1][(k + 1) * 8 + g] = half(b[i], 1);
  }
  for (int i = 0; i < 4; i++) t[2][(g + (i >> 1) * 8) * 8 + 2 * q + (i & 1)] = c[i];
  countWork(1, 0);
  __syncwarp();
  float out[4];
  for (int i = 0; i < 4; i++) {
    const int r = g + (i >> 1) * 8, col = 2 * q + (i & 1);
    float acc = t[2][r * 8 + col];
    for (int k = 0; k < 16; k++) acc += t[0][r * 16 + k] * t[1][k * 8 + col];
    out[i] = acc;
  }
  __syncwarp();  // every lane has read the tiles before any lane's next mma overwrites them
  for (int i = 0; i < 4; i++) d[i] = out[i];
}
// PTX's ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: four 8x8 matrices of 16-bit elements
// from shared memory. Lane L gives the address of row L % 8 of matrix L / 8 (16 bytes, 16-byte
// aligned, in shared memory: anything else is refused, as the hardware faults) and receives in
// r[i] two elements of matrix i, the first in the lower half: row L / 4 at columns 2 (L % 4) and
// the next, or with trans column L / 4 at rows 2 (L % 4) and the next (mma16816's fragment
// layout). All 32 lanes meet, as on a GPU.
// Shared-memory wavefronts of one ldmatrix.x4 (rows: its 32 row addresses): the banks serve 128
// bytes at once, so a matrix's eight 16-byte rows take one wavefront when they fall in distinct
// 16-byte eighths of those 128, else (a bank conflict) as many as the most distinct rows sharing one.
inline int ldmatrixWavefronts(const uint16_t* const* rows) {
  int total = 0;
  for (int m = 0; m < 4; m++) {
    int in[8] = {}, most = 0;
    for (int i = 0; i < 8; i++) {
      bool again = false;  // the same row twice is read once
      for (int j = 0; j < i; j++) again |= rows[8 * m + j] == rows[8 * m + i];
      if (!again) most = std::max(most, ++in[(uintptr_t)rows[8 * m + i] / 16 % 8]);
    }
    total += most;
  }
  return total;
}
inline void ldmatrix4(uint32_t (&r)[4], const void* row, bool trans) {
  namespace w = nvcuda::wmma::detail;
  if ((uintptr_t)row % 16) throw std::runtime_error("ldmatrix: a row address is not 16-byte aligned");
  if (!inSharedMemory(row, 16)) throw std::runtime_error("ldmatrix: a row address is not in the block's shared memory");
  auto rows = reinterpret_cast<const uint16_t**>(warpTiles(w::warp()));
  const int ln = w::lane(), g = ln >> 2, q = ln & 3;
  rows[ln] = static_cast<const uint16_t*>(row);
  countWork(0, 16);  // this lane's row
  __syncwarp();
  if (ln == 0) countWork(0, 0, ldmatrixWavefronts(rows));
  for (int i = 0; i < 4; i++) {
    const uint16_t lo = trans ? rows[8 * i + 2 * q][g] : rows[8 * i + g][2 * q];
    const uint16_t hi = trans ? rows[8 * i + 2 * q + 1][g] : rows[8 * i + g][2 * q + 1];
    r[i] = (uint32_t)lo | (uint32_t)hi << 16;
  }
  __syncwarp();  // every lane has read the addresses before any lane's next call overwrites them
}
}  // namespace cpt_sim
