// AMX bf16 GEMM kernel (see bf16.h). Compiled for AMX through the pragma below; only called
// after bf16::supports(Path::amx) said yes. Headers first: nothing instantiated after the pragma
// may be shared with generic code.
#include "bf16.h"
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")

namespace cpt {
namespace bf16 {

namespace {
struct alignas(64) TileCfg {
  uint8_t palette, startRow, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
inline void configure() {
  TileCfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
}
}  // namespace


void computeAmx(const uint16_t* Ap, const uint16_t* Bp, int M, int N, int K, int i0, int i1, int j0, int j1, float* C,
             int ldc, bool acc, const float* bias, int kpB) {
  const int Kp = pad(K), steps = Kp / 32, KpB = kpB ? kpB : Kp;
  // Very deep products (the LM head's input gradient, K = vocab) are split into 2048-deep
  // chunks so a chunk of A and B is reused from cache across the blocks of C; partial sums wait
  // in `part` (fp32, stored and reloaded exactly), so the instruction sequence each C block
  // sees, and hence every bit of the result, is the same as without chunking.
  const int kcb = steps > 64 ? 64 : steps;
  // Columns of packed B per cache block: about 512 KiB of it stays in L2 while the rows stream.
  int ncb = (int)((512u * 1024u) / ((unsigned)kcb * 64u)) / 32 * 32;
  if (ncb < 32) ncb = 32;
  float* part = kcb < steps ? partials((size_t)(i1 - i0) * ncb) : nullptr;
  configure();
  alignas(64) float out[32 * 32];
  for (int jc = j0; jc < j1; jc += ncb) {
    const int je = jc + ncb < j1 ? jc + ncb : j1;
    for (int ks = 0; ks < steps; ks += kcb) {
      const int ke = ks + kcb < steps ? ks + kcb : steps;
      const bool first = ks == 0, last = ke == steps;
      for (int ir = i0; ir < i1; ir += 32) {
        const uint16_t* a0 = Ap + (size_t)ir * Kp;
        const uint16_t* a1 = a0 + (size_t)16 * Kp;
        for (int jr = jc; jr < je; jr += 32) {
          const uint16_t* b0 = Bp + (size_t)jr * KpB;
          const uint16_t* b1 = b0 + (size_t)16 * KpB;
          float* pp = part ? part + (size_t)(ir - i0) * ncb + (jr - jc) : nullptr;
          const size_t pstride = (size_t)ncb * sizeof(float);
          if (first) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
          } else {
            _tile_loadd(0, pp, pstride);
            _tile_loadd(1, pp + 16, pstride);
            _tile_loadd(2, pp + (size_t)16 * ncb, pstride);
            _tile_loadd(3, pp + (size_t)16 * ncb + 16, pstride);
          }
          for (int s = ks; s < ke; s++) {
            _tile_loadd(4, a0 + (size_t)s * 512, 64);
            _tile_loadd(6, b0 + (size_t)s * 512, 64);
            _tile_loadd(5, a1 + (size_t)s * 512, 64);
            _tile_loadd(7, b1 + (size_t)s * 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
          if (!last) {
            _tile_stored(0, pp, pstride);
            _tile_stored(1, pp + 16, pstride);
            _tile_stored(2, pp + (size_t)16 * ncb, pstride);
            _tile_stored(3, pp + (size_t)16 * ncb + 16, pstride);
            continue;
          }
          _tile_stored(0, out, 128);
          _tile_stored(1, out + 16, 128);
          _tile_stored(2, out + 16 * 32, 128);
          _tile_stored(3, out + 16 * 32 + 16, 128);
          const int rows = M - ir < 32 ? M - ir : 32, cols = N - jr < 32 ? N - jr : 32;
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
  _tile_release();
}

}  // namespace bf16
}  // namespace cpt
#else
namespace cpt {
namespace bf16 {
void computeAmx(const uint16_t*, const uint16_t*, int, int, int, int, int, int, int, float*, int, bool, const float*, int) {}
}  // namespace bf16
}  // namespace cpt
#endif
