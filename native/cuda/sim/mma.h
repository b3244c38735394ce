// PTX's warp-level matrix instructions that the attention uses (fragments.cuh): mma.sync
// m16n8k16 on bf16 and ldmatrix.x4, in their documented fragment layouts, with the checks the
// hardware makes. A warp's lanes post their operands, meet at a warp barrier, and each computes
// its own elements. And ex2.approx.ftz.f32, its exponential.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace cpt_sim {
namespace lanes {
inline int lane() {
  const dim3 t = threadIdx, b = blockDim;
  return (int)((t.x + b.x * (t.y + b.y * t.z)) & 31);
}
inline int warp() {
  const dim3 t = threadIdx, b = blockDim;
  if ((b.x * b.y * b.z) % 32) throw std::runtime_error("mma: the block's size is not a whole number of warps");
  return (int)((t.x + b.x * (t.y + b.y * t.z)) >> 5);
}
}  // namespace lanes

// PTX's mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d = a b + c, in the fragment layout
// PTX documents: with g = lane / 4 and q = lane % 4, a (16x16, four 32-bit registers of two
// bf16, the lower column in the lower half) holds rows g and g + 8 at
// columns 2q, 2q + 1 and 2q + 8, 2q + 9 (a0: g, 2q; a1: g + 8, 2q; a2: g, 2q + 8; a3: g + 8, 2q + 8);
// b (16x8) holds rows 2q, 2q + 1 (b0) and 2q + 8, 2q + 9 (b1) of column g; c and d (16x8, fp32)
// rows g (c0, c1) and g + 8 (c2, c3) at columns 2q, 2q + 1. All 32 lanes meet, as on a GPU.
inline void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
  float(*t)[256] = reinterpret_cast<float(*)[256]>(warpTiles(lanes::warp()));  // a [16][16], b [16][8], c [16][8]
  const int ln = lanes::lane(), g = ln >> 2, q = ln & 3;
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
  if ((uintptr_t)row % 16) throw std::runtime_error("ldmatrix: a row address is not 16-byte aligned");
  if (!inSharedMemory(row, 16)) throw std::runtime_error("ldmatrix: a row address is not in the block's shared memory");
  auto rows = reinterpret_cast<const uint16_t**>(warpTiles(lanes::warp()));
  const int ln = lanes::lane(), g = ln >> 2, q = ln & 3;
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
// PTX's ex2.approx.ftz.f32: 2^x, a subnormal input read as zero and a subnormal result flushed to
// +0; 2^-inf = +0, 2^inf = inf, NaN stays NaN. The hardware approximates (its last bits are its
// own, as expf's are); modelled by the correctly rounded exp2f.
inline float ex2Approx(float x) {
  if (std::fpclassify(x) == FP_SUBNORMAL) x = 0.f;
  const float y = std::exp2(x);
  return std::fpclassify(y) == FP_SUBNORMAL ? 0.f : y;
}
}  // namespace cpt_sim
