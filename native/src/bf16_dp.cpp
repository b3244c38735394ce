// AVX512-BF16 GEMM kernel (vdpbf16ps) for CPUs with bf16 dot products but no AMX (AMD Zen 4,
// Intel Cooper Lake). Same packed operands and contract as the AMX kernel (bf16.h): each 8x32
// slice of C is summed pair by pair in k order, so the result does not depend on how blocks are
// split between threads.
#include "bf16.h"
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")

namespace cpt {
namespace bf16 {

namespace {
// C rows [r0, r0 + 8) of a 16-row A panel times two 16-column B panels (32 columns), over the
// 32-deep steps [s0, s1). A panel step s holds [16 rows][32 k]; B panel step s holds [16 k-pairs]
// [16 columns][2]. The sums start from `in` (8 x 32, row stride ldi) or zero, and go to `out`
// (row stride ldo).
inline void rows8x32(const uint16_t* a, const uint16_t* b0, const uint16_t* b1, int r0, int s0, int s1, const float* in,
                     int ldi, float* out, int ldo) {
  __m512 c[8][2];
  for (int r = 0; r < 8; r++) {
    c[r][0] = in ? _mm512_loadu_ps(in + r * ldi) : _mm512_setzero_ps();
    c[r][1] = in ? _mm512_loadu_ps(in + r * ldi + 16) : _mm512_setzero_ps();
  }
  for (int s = s0; s < s1; s++) {
    const uint16_t* as = a + (size_t)s * 512 + r0 * 32;
    const uint16_t* bs0 = b0 + (size_t)s * 512;
    const uint16_t* bs1 = b1 + (size_t)s * 512;
    for (int p = 0; p < 16; p++) {
      const __m512bh bv0 = (__m512bh)_mm512_load_si512(bs0 + p * 32);
      const __m512bh bv1 = (__m512bh)_mm512_load_si512(bs1 + p * 32);
      for (int r = 0; r < 8; r++) {
        uint32_t pair;
        memcpy(&pair, as + r * 32 + 2 * p, 4);
        const __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
        c[r][0] = _mm512_dpbf16_ps(c[r][0], av, bv0);
        c[r][1] = _mm512_dpbf16_ps(c[r][1], av, bv1);
      }
    }
  }
  for (int r = 0; r < 8; r++) {
    _mm512_storeu_ps(out + r * ldo, c[r][0]);
    _mm512_storeu_ps(out + r * ldo + 16, c[r][1]);
  }
}
}  // namespace

void computeDp(const uint16_t* Ap, const uint16_t* Bp, int M, int N, int K, int i0, int i1, int j0, int j1, float* C,
               int ldc, bool acc, const float* bias, int kpB) {
  const int Kp = pad(K), steps = Kp / 32, KpB = kpB ? kpB : Kp;
  // Deep products are cut into 1024-deep chunks over column blocks whose packed B (about 512 KiB)
  // stays in L2 while the rows stream; partial sums wait in `part` (fp32, stored and reloaded
  // exactly), so every element sees the same dot-product sequence as without chunking.
  const int kcb = steps > 32 ? 32 : steps, ncb = 256;
  float* part = kcb < steps ? partials((size_t)(i1 - i0) * ncb) : nullptr;
  alignas(64) float out[32 * 32];
  for (int jc = j0; jc < j1; jc += ncb) {
    const int je = jc + ncb < j1 ? jc + ncb : j1;
    for (int ks = 0; ks < steps; ks += kcb) {
      const int ke = ks + kcb < steps ? ks + kcb : steps;
      const bool first = ks == 0, last = ke == steps;
      for (int ir = i0; ir < i1; ir += 32) {
        const int rows = M - ir < 32 ? M - ir : 32;
        for (int jr = jc; jr < je; jr += 32) {
          const uint16_t* b0 = Bp + (size_t)jr * KpB;
          const uint16_t* b1 = b0 + (size_t)16 * KpB;
          float* pp = part ? part + (size_t)(ir - i0) * ncb + (jr - jc) : nullptr;
          for (int g = 0; g * 8 < rows; g++) {  // 8-row groups: two per 16-row panel
            const uint16_t* a = Ap + (size_t)(ir + (g / 2) * 16) * Kp;
            const float* in = first ? nullptr : pp + (size_t)g * 8 * ncb;
            if (last) rows8x32(a, b0, b1, (g % 2) * 8, ks, ke, in, ncb, out + g * 8 * 32, 32);
            else rows8x32(a, b0, b1, (g % 2) * 8, ks, ke, in, ncb, pp + (size_t)g * 8 * ncb, ncb);
          }
          if (!last) continue;
          const int cols = N - jr < 32 ? N - jr : 32;
          const __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
          const __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
          for (int r = 0; r < rows; r++) {
            float* c = C + (size_t)(ir + r) * ldc + jr;
            __m512 v0 = _mm512_load_ps(out + r * 32), v1 = _mm512_load_ps(out + r * 32 + 16);
            if (acc) {
              v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), v0);
              v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), v1);
            } else if (bias) {
              v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, bias + jr), v0);
              v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, bias + jr + 16), v1);
            }
            _mm512_mask_storeu_ps(c, m0, v0);
            _mm512_mask_storeu_ps(c + 16, m1, v1);
          }
        }
      }
    }
  }
}

}  // namespace bf16
}  // namespace cpt
#else
namespace cpt {
namespace bf16 {
void computeDp(const uint16_t*, const uint16_t*, int, int, int, int, int, int, int, float*, int, bool, const float*, int) {}
}  // namespace bf16
}  // namespace cpt
#endif
