// Packing of fp32 operands into the bf16 panel layouts of bf16.h (round to nearest even), shared
// by the AMX and the AVX512-BF16 kernels. Compiled for AVX512-BF16 (no AMX instruction here).
#include "bf16.h"
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")

namespace cpt {
namespace bf16 {

namespace {
// Round to nearest even, NaN kept quiet (as torch / _mm512_cvtneps_pbh do).
inline uint16_t cvt(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
// 16 floats to 16 bf16 (RNE) with the AVX512-BF16 instruction.
inline __m256i cvt16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

// Valid entries in the 16-wide panel starting at p of a dimension of size n (0 past its end).
inline int valid16(int n, int p) { return n - p >= 16 ? 16 : n - p > 0 ? n - p : 0; }

// t[kk][c] = bf16(X[(kb + kk) * ld + p + c]) for the 32 rows from kb and the `cols` valid columns
// from p; rows past K and columns past `cols` are zero. A 32-deep block of a row-major source,
// gathered before it is scattered into a panel's tile layout.
inline void gather32x16(uint16_t t[32][16], const float* X, int ld, int K, int kb, int p, int cols) {
  for (int kk = 0; kk < 32; kk++) {
    const int k = kb + kk;
    if (k >= K || cols == 0) {
      memset(t[kk], 0, 32);
    } else if (cols == 16) {
      _mm256_store_si256((__m256i*)t[kk], cvt16(_mm512_loadu_ps(X + (size_t)k * ld + p)));
    } else {
      const float* src = X + (size_t)k * ld + p;
      for (int c = 0; c < cols; c++) t[kk][c] = cvt(src[c]);
      for (int c = cols; c < 16; c++) t[kk][c] = 0;
    }
  }
}
}  // namespace

void packA(uint16_t* dst, bool ta, const float* A, int lda, int M, int K, int i0, int i1) {
  const int Kp = pad(K);
  if (!ta) {
    for (int ip = i0; ip < i1; ip += 16) {
      uint16_t* panel = dst + (size_t)ip * Kp;  // 16 rows x Kp, as [Kp/32][16][32]
      for (int r = 0; r < 16; r++) {
        const int i = ip + r;
        for (int s = 0; s < Kp; s += 32) {
          uint16_t* d = panel + (size_t)s * 16 + r * 32;
          if (i >= M) { memset(d, 0, 64); continue; }
          const float* src = A + (size_t)i * lda + s;
          const int n = K - s < 32 ? K - s : 32;
          if (n == 32) {
            _mm256_storeu_si256((__m256i*)d, cvt16(_mm512_loadu_ps(src)));
            _mm256_storeu_si256((__m256i*)(d + 16), cvt16(_mm512_loadu_ps(src + 16)));
          } else {
            for (int k = 0; k < n; k++) d[k] = cvt(src[k]);
            for (int k = n; k < 32; k++) d[k] = 0;
          }
        }
      }
    }
    return;
  }
  // Transposed A (element (i, k) at A[k * lda + i]): 32-deep blocks outermost, so the 32 source
  // rows of a block are streamed left to right across all of this range's panels (reading one
  // panel at a time down all K rows would touch a new page per row), each block transposed in
  // a small buffer and written as one 1 KiB tile.
  for (int kb = 0; kb < Kp; kb += 32) {
    for (int ip = i0; ip < i1; ip += 16) {
      alignas(64) uint16_t t[32][16];
      gather32x16(t, A, lda, K, kb, ip, valid16(M, ip));
      uint16_t* d = dst + (size_t)ip * Kp + (size_t)kb * 16;  // [16][32]
      for (int r = 0; r < 16; r++)
        for (int kk = 0; kk < 32; kk++) d[r * 32 + kk] = t[kk][r];
    }
  }
}

void packB(uint16_t* dst, bool tb, const float* B, int ldb, int K, int N, int j0, int j1) {
  const int Kp = pad(K);
  if (tb) {  // element (k, j) at B[j * ldb + k]: pairs (k, k+1) are adjacent in the source
    for (int jp = j0; jp < j1; jp += 16) {
      uint16_t* panel = dst + (size_t)jp * Kp;  // 16 columns x Kp, as [Kp/2][16][2]
      const int n = valid16(N, jp);
      for (int c = 0; c < 16; c++) {
        uint16_t* d = panel + c * 2;
        if (c >= n) {
          for (int k = 0; k < Kp; k += 2) d[(size_t)k * 16] = 0, d[(size_t)k * 16 + 1] = 0;
          continue;
        }
        const float* src = B + (size_t)(jp + c) * ldb;
        int k = 0;
        for (; k + 16 <= K; k += 16) {
          alignas(32) uint32_t t[8];
          _mm256_store_si256((__m256i*)t, cvt16(_mm512_loadu_ps(src + k)));
          for (int q = 0; q < 8; q++) memcpy(d + (size_t)(k + 2 * q) * 16, &t[q], 4);
        }
        for (; k < Kp; k++) d[(size_t)(k >> 1) * 32 + (k & 1)] = k < K ? cvt(src[k]) : 0;
      }
    }
    return;
  }
  // Element (k, j) at B[k * ldb + j]: 32-deep blocks outermost, as transposed A.
  for (int kb = 0; kb < Kp; kb += 32) {
    for (int jp = j0; jp < j1; jp += 16) {
      alignas(64) uint16_t t[32][16];
      gather32x16(t, B, ldb, K, kb, jp, valid16(N, jp));
      uint16_t* d = dst + (size_t)jp * Kp + (size_t)kb * 16;  // [16 pairs][16][2]
      for (int kk = 0; kk < 32; kk += 2)
        for (int c = 0; c < 16; c++) d[kk * 16 + c * 2] = t[kk][c], d[kk * 16 + c * 2 + 1] = t[kk + 1][c];
    }
  }
}

}  // namespace bf16
}  // namespace cpt
#else
namespace cpt {
namespace bf16 {
void packA(uint16_t*, bool, const float*, int, int, int, int, int) {}
void packB(uint16_t*, bool, const float*, int, int, int, int, int) {}
}  // namespace bf16
}  // namespace cpt
#endif
