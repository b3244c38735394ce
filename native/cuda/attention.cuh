// Fused causal attention for bf16 on mma.sync tiles (FlashAttention-2's structure), taken with
// CPT_CUDA_ATTENTION=mma: Q, K, V tiles in shared memory, scores in registers only, never in HBM;
// fp32 accumulation. HD is the head dimension (32, 64, 80, 128 or 256; others take the unfused
// path in engine.cu). Query and key blocks of kFlash = 64 rows (32 keys at 256; the forward's
// query blocks 128 rows at head dimensions up to 64); Q, K and V in the "heads layout"
// [B*H, T_, HD], O and its gradient in rows [B*T_, H*HD]. Deterministic: no atomics, every sum in
// a fixed order.
//   forward   one pass over the key blocks with the online softmax; the log-sum-exp saved.
//   backward  D = rowsum(dO * O); dK and dV per key block looping over the query blocks that see
//             it; dQ in its own pass per query block looping over the key blocks it sees.
#pragma once
#include "common.h"
#include "fragments.cuh"
#include "kernels.cuh"

namespace cpt {
namespace cuda {

using bf16 = __nv_bfloat16;

constexpr int kFlash = 64;        // rows of a query or key block
constexpr int kPld = kFlash + 8;  // bf16 probability tile row (elements): rows on distinct banks
__host__ __device__ constexpr int flashLd(int hd) { return hd + 8; }  // bf16 Q/K/V tile row, likewise

// Rows [r0, r0 + n) of one head [T_, hd] into a shared tile of row length ld; rows past T_ are
// zeros. A head's rows lie rs elements apart (0: hd, the heads layout; H * hd in rows [N, D]).
// 16 bytes (8 elements) per load. Async: by cp.async (not through registers; the zeros by plain
// stores), there after the caller's cpAsyncWait and a barrier.
template <bool Async = false>
__device__ __forceinline__ void flashLoad(const bf16* src, int r0, int T_, int hd, bf16* s, int n = kFlash, int rs = 0) {
  const int w = hd / 8, ld = flashLd(hd);
  for (int i = threadIdx.x; i < n * w; i += blockDim.x) {
    const int r = i / w, c = i % w;
    const uint4* from = reinterpret_cast<const uint4*>(src + (size_t)(r0 + r) * (rs ? rs : hd)) + c;
    uint4* to = reinterpret_cast<uint4*>(s + r * ld) + c;
    if (Async && r0 + r < T_) cpAsync16(to, from);
    else *to = r0 + r < T_ ? *from : uint4{0, 0, 0, 0};
  }
}

// The first element of head bh = b * H + h in rows [B * T_, H * hd] (the layout of the output
// product's input and of its gradient, which the mma attention writes and reads directly).
__device__ __forceinline__ size_t rowsHead(int bh, int H, int T_, int hd) { return ((size_t)(bh / H) * T_ * H + bh % H) * hd; }

// D[r] = sum over the head dimension of dO * O, per row r of the heads layout (fp32); dO and O in
// rows [B * T_, H * hd]. One warp per row, lanes strided then a butterfly: a fixed order. grid
// ceil(rows / 8), block 256.
template <class T>
__global__ void attnRowDotKernel(const T* dO, const T* O, float* D, size_t rows, int hd, int T_, int H) {
  const size_t r = (size_t)blockIdx.x * 8 + (threadIdx.x >> 5);
  if (r >= rows) return;  // whole warps leave together
  const size_t at = rowsHead((int)(r / T_), H, T_, hd) + r % T_ * H * hd;
  float s = 0;
  for (int j = threadIdx.x & 31; j < hd; j += 32) s += toF(dO[at + j]) * toF(O[at + j]);
  s = warpSum(s);
  if ((threadIdx.x & 31) == 0) D[r] = s;
}

// The log-sum-exp (in base 2: times log2(e), for ex2) and D of rows [r0, r0 + kFlash) of one
// head into shared memory, 0 past T_. Async: by cp.async, as flashLoad, the log-sum-exp as it is:
// flashRowStatsLanded turns it into base 2 once this thread's copies have landed.
template <bool Async = false>
__device__ __forceinline__ void flashRowStats(const float* lse, const float* D, int r0, int T_, float* lseS, float* DS) {
  for (int i = threadIdx.x; i < kFlash; i += blockDim.x) {
    if (Async && r0 + i < T_) {
      cpAsync4(lseS + i, lse + r0 + i), cpAsync4(DS + i, D + r0 + i);
    } else {
      lseS[i] = r0 + i < T_ ? lse[r0 + i] * kLog2e : 0.f;
      DS[i] = r0 + i < T_ ? D[r0 + i] : 0.f;
    }
  }
}
// After this thread's cpAsyncWait, before the barrier that publishes them: the log-sum-exp values
// it copied (the same threads as in flashRowStats) into base 2.
__device__ __forceinline__ void flashRowStatsLanded(float* lseS) {
  for (int i = threadIdx.x; i < kFlash; i += blockDim.x) lseS[i] *= kLog2e;
}

// ---- Attention on mma.sync tiles (CPT_CUDA_ATTENTION=mma; simulator only, not yet measured),
// FlashAttention-2's structure. Forward: each warp owns 16 query rows (32 at head dimensions up
// to 64); a key tile's scores stay in the mma accumulators, the online softmax runs on them in
// registers (a lane holds two rows, g and g + 8, at two columns of each 8-key tile; a row's four
// lanes reduce by shuffles), the probabilities become the next product's A fragments without
// leaving registers, and O is rescaled in its accumulators; Q, K and V tiles in shared memory.
// One pass over the keys; the probabilities are rounded to bf16 relative to the running maximum
// (FlashAttention's rounding, not the unfused path's). Exponentials by ex2, the scale times
// log2(e) folded into the multiply-add before it; the causal mask only on tiles that need it.
// Backward, from the log-sum-exp the forward saved: dK and dV per key block looping over the
// query blocks that see it, dQ in its own pass per query block looping over the key blocks it
// sees; no atomics, every sum in a fixed order.

// Keys per tile: 32 at head dimension 256, so that the forward's Q tile and two K and V tiles
// (99 KiB) leave room for two blocks a multiprocessor; else 64.
__host__ __device__ constexpr int mmaKeys(int hd) { return hd == 256 ? 32 : 64; }
// Query rows a forward block of four warps: 128 (two 16-row tiles a warp, so that each K and V
// fragment a warp loads serves two mma.sync) at head dimensions up to 64; 64 elsewhere, where a
// second tile's output accumulators would not fit the registers (64 more floats a lane at 128).
__host__ __device__ constexpr int mmaQueryRows(int hd) { return hd <= 64 ? 128 : 64; }
// The forward's Q tile, and K and V tiles twice: the next pair loads while this one is used.
__host__ __device__ constexpr size_t mmaForwardSmem(int hd) { return (size_t)(mmaQueryRows(hd) + 4 * mmaKeys(hd)) * flashLd(hd) * 2; }

// One score product for a warp's MT 16-row tiles over the head dimension: S += X Y^T, X the
// warp's rows, Y NT * 8 rows of the other side's tile.
template <int HD, int MT, int NT>
__device__ __forceinline__ void mmaScore(float (&S)[MT][NT][4], const bf16* X, const bf16* Y) {
  constexpr int ld = flashLd(HD);
  for (int kk = 0; kk < HD; kk += 16) {
    uint32_t a[MT][4], b[4];
CPT_UNROLL
    for (int m = 0; m < MT; m++) fragA(a[m], X + m * 16 * ld + kk, ld);
    for (int n = 0; n < NT; n += 2) {
      fragBt(b, Y + n * 8 * ld + kk, ld);
CPT_UNROLL
      for (int m = 0; m < MT; m++) mma2(S[m][n], S[m][n + 1], a[m], b);
    }
  }
}

// O into rows [B * T_, H * HD] (the output product's input: no merge of the heads after it).
// grid (ceil(T_ / mmaQueryRows(HD)), B * H), block 128 (4 warps); mmaForwardSmem(HD). A warp
// skips a key tile that none of its rows sees (past its last row, or the warp past T_): the
// online softmax would leave its state unchanged, bit for bit.
template <int HD>
__global__ void mmaForwardKernel(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, int T_, int H, float scale) {
  constexpr int ld = flashLd(HD), KB = mmaKeys(HD), NS = KB / 8, NO = HD / 8, QR = mmaQueryRows(HD), MT = QR / 64;
  CPT_DYNAMIC_SMEM(bf16, Qs);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c2 = 2 * (lane & 3);
  const size_t head = (size_t)blockIdx.y * T_ * HD;
  const int q0 = blockIdx.x * QR, kEnd = min(T_, q0 + QR), w0 = q0 + warp * 16 * MT;  // w0: the warp's first row
  const float sl2 = scale * kLog2e;
  int row[MT][2];  // a lane's rows in each of the warp's tiles: accumulator elements 0, 1 and 2, 3
CPT_UNROLL
  for (int mt = 0; mt < MT; mt++) row[mt][0] = w0 + 16 * mt + g, row[mt][1] = row[mt][0] + 8;
  const bf16* Qw = Qs + warp * 16 * MT * ld;
  bf16* tiles = Qs + QR * ld;  // two [K; V] pairs, alternating
  flashLoad(q + head, q0, T_, HD, Qs, QR);
  flashLoad<true>(k + head, 0, T_, HD, tiles, KB);
  flashLoad<true>(v + head, 0, T_, HD, tiles + KB * ld, KB);
  cpAsyncCommit();
  float O[MT][NO][4] = {};
  float m[MT][2], l[MT][2] = {};  // per row: running max (of the unscaled scores), this lane's sum
CPT_UNROLL
  for (int t = 0; t < MT; t++) m[t][0] = m[t][1] = -INFINITY;
  for (int k0 = 0; k0 < kEnd; k0 += KB) {
    const int t = k0 / KB % 2;
    bf16 *Ks = tiles + t * 2 * KB * ld, *Vs = Ks + KB * ld, *next = tiles + (1 - t) * 2 * KB * ld;
    __syncthreads();  // the tiles before these are no longer read: the next ones take their place
    if (k0 + KB < kEnd) {
      flashLoad<true>(k + head, k0 + KB, T_, HD, next, KB);
      flashLoad<true>(v + head, k0 + KB, T_, HD, next + KB * ld, KB);
    }
    cpAsyncCommit();  // (empty after the last tile) so that one group in flight is always the next
    cpAsyncWait<1>();  // this thread's copies of these tiles have landed
    __syncthreads();   // and everyone's
    if (k0 > w0 + 16 * MT - 1 || w0 >= T_) continue;  // (warp-uniform)
    float S[MT][NS][4] = {};
    mmaScore<HD>(S, Qw, Ks);  // S = Q K^T
    // Masked (causal, keys past T_) only where some key of the tile is past a row of the warp or
    // past T_: on the tiles below the diagonal no lane spends an instruction on it.
    if (k0 + KB - 1 > w0 || k0 + KB > T_)
CPT_UNROLL
      for (int mt = 0; mt < MT; mt++)
        for (int n = 0; n < NS; n++)
          for (int i = 0; i < 4; i++) {
            const int key = k0 + n * 8 + c2 + (i & 1);
            if (key > row[mt][i >> 1] || key >= T_) S[mt][n][i] = -INFINITY;
          }
CPT_UNROLL
    for (int mt = 0; mt < MT; mt++) {
      // Each row's new maximum over its four lanes (unscaled: the scale is positive).
      float mx[2] = {m[mt][0], m[mt][1]};
      for (int n = 0; n < NS; n++)
        for (int i = 0; i < 4; i++) mx[i >> 1] = fmaxf(mx[i >> 1], S[mt][n][i]);
      float alpha[2], base[2];
      for (int r = 0; r < 2; r++) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        alpha[r] = m[mt][r] == -INFINITY ? 0.f : ex2((m[mt][r] - mx[r]) * sl2);
        base[r] = mx[r] == -INFINITY ? 0.f : mx[r] * sl2;  // a row with no key here yet: 2^-inf = 0
        m[mt][r] = mx[r], l[mt][r] *= alpha[r];
      }
      // P = exp((S - max) scale) = 2^(S scale log2(e) - max scale log2(e)): one multiply-add and ex2
      for (int n = 0; n < NS; n++)
        for (int i = 0; i < 4; i++) l[mt][i >> 1] += S[mt][n][i] = ex2(fmaf(S[mt][n][i], sl2, -base[i >> 1]));
      for (auto& f : O[mt]) f[0] *= alpha[0], f[1] *= alpha[0], f[2] *= alpha[1], f[3] *= alpha[1];
    }
    for (int kk = 0; kk < KB / 16; kk++) {  // O += P V, P from the score accumulators
      uint32_t a[MT][4];
CPT_UNROLL
      for (int mt = 0; mt < MT; mt++)
        a[mt][0] = pack2(S[mt][2 * kk][0], S[mt][2 * kk][1]), a[mt][1] = pack2(S[mt][2 * kk][2], S[mt][2 * kk][3]),
        a[mt][2] = pack2(S[mt][2 * kk + 1][0], S[mt][2 * kk + 1][1]), a[mt][3] = pack2(S[mt][2 * kk + 1][2], S[mt][2 * kk + 1][3]);
      for (int n = 0; n < NO; n += 2) {
        uint32_t b[4];
        fragB(b, Vs + kk * 16 * ld + n * 8, ld);
CPT_UNROLL
        for (int mt = 0; mt < MT; mt++) mma2(O[mt][n], O[mt][n + 1], a[mt], b);
      }
    }
  }
  // Unrolled, so that O[mt][n][2 * r] has constant indices: otherwise nvcc keeps O in local memory
  // at head dimension 256 (written out after the loop over the keys and read back here).
CPT_UNROLL
  for (int mt = 0; mt < MT; mt++)
CPT_UNROLL
    for (int r = 0; r < 2; r++) {  // a row's sum over its four lanes (the same bits in each)
      l[mt][r] += __shfl_xor_sync(0xffffffffu, l[mt][r], 1);
      l[mt][r] += __shfl_xor_sync(0xffffffffu, l[mt][r], 2);
      if (row[mt][r] >= T_) continue;
CPT_UNROLL
      for (int n = 0; n < NO; n++)
        *reinterpret_cast<uint32_t*>(o + rowsHead(blockIdx.y, H, T_, HD) + (size_t)row[mt][r] * H * HD + n * 8 + c2) =
            pack2(O[mt][n][2 * r] / l[mt][r], O[mt][n][2 * r + 1] / l[mt][r]);
      if (c2 == 0) lse[(size_t)blockIdx.y * T_ + row[mt][r]] = m[mt][r] * scale + logf(l[mt][r]);
    }
}

// The backward's warps: mmaBackwardWarps(HD), in groups that share mmaRowTiles(HD) 16-row tiles of
// the block's own rows (keys for dK and dV, queries for dQ). A warp takes one or both of its rows'
// score products against its share of the other side's 64-block, P and dS go to shared memory
// (bf16), and after a barrier the warp accumulates mmaGradCols(HD) columns of its rows over the
// whole block: 64 accumulator floats a lane or fewer (80 at head dimension 80) where dK and dV at
// 256 would otherwise need 256 registers.
__host__ __device__ constexpr int mmaBackwardWarps(int hd) { return mmaKeys(hd) / 16 * (hd > 64 ? hd / 64 : 1); }
__host__ __device__ constexpr int mmaBackwardThreads(int hd) { return 32 * mmaBackwardWarps(hd); }
// Two 16-row tiles a warp at head dimensions up to 64, so that each B fragment it loads serves two
// mma.sync (FlashAttention-2's warps hold more than 16 rows too): the accumulators are as many as
// one tile's against twice the columns, but ptxas takes 182-186 registers for the dK/dV kernel
// (168 with one) and 166 for dQ (128), two and three blocks of four warps a multiprocessor instead
// of three and four. Not at 128 (dK/dV 154 registers: one block of eight warps instead of two),
// 80 (40 columns a warp, an odd count of 8-column tiles) or 256 (32 columns a warp: dK's rotary
// pairs, 32 columns apart, would lie in different warps; no gain in the score products either).
__host__ __device__ constexpr int mmaRowTiles(int hd) { return hd <= 64 ? 2 : 1; }
// Warps sharing a group of rows, and the columns of dK, dV or dQ each accumulates.
__host__ __device__ constexpr int mmaGroupWarps(int hd) { return mmaBackwardWarps(hd) * 16 * mmaRowTiles(hd) / mmaKeys(hd); }
__host__ __device__ constexpr int mmaGradCols(int hd) { return hd / mmaGroupWarps(hd); }
// Where warps share rows, the score products are split between them: the first half of a group
// takes S against twice the queries (or keys) each, the second half dP; the dP warps read P back
// from shared memory (bf16) for dS. A warp then loads its row fragments once a step for twice the
// columns instead of twice for the same, for one more barrier.
__host__ __device__ constexpr bool mmaScoresSplit(int hd) { return mmaGroupWarps(hd) > 1; }
// Columns of the other side's 64-block a warp's score product covers.
__host__ __device__ constexpr int mmaScoreCols(int hd) { return mmaScoresSplit(hd) ? 2 * kFlash / mmaGroupWarps(hd) : kFlash; }
// One step's tiles of the other side (a block of 64 queries or keys), in bf16 elements: two of
// 64 rows (Q and dO for the dK/dV kernel, K and V for dQ) and 64 rows' log-sum-exp and D (the
// dK/dV kernel's, fp32).
__host__ __device__ constexpr int mmaStepElems(int hd) { return 2 * kFlash * flashLd(hd) + 2 * kFlash * 2; }
// Two buffers of them at head dimensions up to 64: the next step's tiles land by cp.async while
// this one's are used, as in the forward, where the second buffer leaves the blocks a
// multiprocessor as many as the registers allow (three); at 80, 128 and 256 it would cost one.
__host__ __device__ constexpr int mmaStepBuffers(int hd) { return hd <= 64 ? 2 : 1; }
// Blocks a multiprocessor the dK/dV kernel is held to, so that ptxas keeps its registers within
// their share: three at head dimensions up to 64 (184 registers a thread without it since the step
// buffers, two blocks), two at 128 (129: one); no bound (0) at 80 and 256, two blocks without one.
__host__ __device__ constexpr int mmaBackwardKVBlocks(int hd) { return hd <= 64 ? 3 : hd == 128 ? 2 : 0; }
// Both backward kernels': two tiles of the block's own rows, two bf16 [rows][64] tiles (P and
// dS) and the step buffers.
__host__ __device__ constexpr size_t mmaBackwardSmem(int hd) {
  return ((size_t)2 * mmaKeys(hd) * flashLd(hd) + 2 * (size_t)mmaKeys(hd) * kPld + (size_t)mmaStepBuffers(hd) * mmaStepElems(hd)) * 2;
}

// A dP warp's dS = P (dP - D) scale where the score products are split: dP in its accumulators
// (MT row tiles from row r0 x N / 8 column tiles from c0), P read back from the bf16 tile the S
// warps wrote (row length kPld), dS into its twin; D(m, r, col) for tile m's row r at column col.
template <int MT, int N, class Dterm>
__device__ __forceinline__ void mmaScoreGrad(const float (&dP)[MT][N][4], const bf16* P, bf16* dS, int r0, int c0, float scale, Dterm D) {
  const int g = (threadIdx.x & 31) >> 2, c2 = 2 * (threadIdx.x & 3);
CPT_UNROLL
  for (int m = 0; m < MT; m++)
    for (int n = 0; n < N; n++)
      for (int r = 0; r < 2; r++) {
        const int e = (r0 + 16 * m + g + 8 * r) * kPld + c0 + n * 8 + c2;
        float p[2], ds[2];
        unpack2(*reinterpret_cast<const uint32_t*>(P + e), p);
        for (int j = 0; j < 2; j++) ds[j] = p[j] * (dP[m][n][2 * r + j] - D(m, r, c0 + n * 8 + c2 + j)) * scale;
        *reinterpret_cast<uint32_t*>(dS + e) = pack2(ds[0], ds[1]);
      }
}

// A warp's gradient accumulators (16 rows x N / 8 tiles of 8 columns from col0, fp32; a lane has
// rows row[0], row[1]) out, rows past T_ skipped. H8 < 0: fp32 into head blockIdx.y of the heads
// layout (mergeHeadsGradKernel then undoes the rotary embedding and merges). Else as bf16 straight
// into part `part` of dqkv [B * T_, H, 3, HD] (the query/key/value product's gradient), the rotary
// embedding undone on the first 16 * H8 columns (8 * H8 the rotary half; they lie in the column
// group at col0 = 0, and a lane holds both columns of a pair) as that kernel does: column d < half
// takes g[d] c + g[d + half] s, d < 2 half takes g[d] c - g[d - half] s, c and s at the row's position.
template <int HD, int N, int H8>
__device__ __forceinline__ void mmaStoreGrad(const float (&acc)[N / 8][4], const int (&row)[2], int col0, int T_, int H, float* heads,
                                             bf16* dqkv, int part, const float* cs, const float* sn) {
  static_assert(16 * H8 <= N, "the rotated columns and their partners lie in the column group");
  const int c2 = 2 * (threadIdx.x & 3), bh = blockIdx.y;
  for (int r = 0; r < 2; r++) {
    if (row[r] >= T_) continue;
    if constexpr (H8 < 0) {
      for (int n = 0; n < N / 8; n++)
        *reinterpret_cast<float2*>(heads + ((size_t)bh * T_ + row[r]) * HD + col0 + n * 8 + c2) = float2{acc[n][2 * r], acc[n][2 * r + 1]};
    } else {
      bf16* out = dqkv + rowsHead(bh, H, T_, 3 * HD) + (size_t)row[r] * H * 3 * HD + part * HD + col0;
CPT_UNROLL
      for (int n = 0; n < N / 8; n++) {
        float v[2] = {acc[n][2 * r], acc[n][2 * r + 1]};
        if constexpr (H8 > 0)
          if (col0 == 0 && n < 2 * H8) {
            const int pn = n < H8 ? n + H8 : n - H8;  // the partner tile, half the rotary width away
            for (int j = 0; j < 2; j++) {
              const size_t at = (size_t)row[r] * 8 * H8 + n % H8 * 8 + c2 + j;
              v[j] = v[j] * cs[at] + (n < H8 ? 1.f : -1.f) * acc[pn][2 * r + j] * sn[at];
            }
          }
        *reinterpret_cast<uint32_t*>(out + n * 8 + c2) = pack2(v[0], v[1]);
      }
    }
  }
}

// dK and dV of one block of mmaKeys(HD) keys, out by mmaStoreGrad<H8> (fp32 into dk and dv, or
// bf16 into dqkv with the rotary tables cs, sn): grid (ceil(T_ / mmaKeys(HD)), B * H), block
// mmaBackwardThreads(HD); mmaBackwardSmem(HD). dO in rows [B * T_, H * HD] (the output product's
// gradient as it comes); lse and D per row of the heads layout.
template <int HD, int H8>
__global__ void __launch_bounds__(mmaBackwardThreads(HD), mmaBackwardKVBlocks(HD))
    mmaBackwardKVKernel(const bf16* q, const bf16* k, const bf16* v, const bf16* dO, const float* lse, const float* D, float* dk,
                        float* dv, bf16* dqkv, const float* cs, const float* sn, int T_, int H, float scale) {
  constexpr int ld = flashLd(HD), R = mmaKeys(HD), MT = mmaRowTiles(HD), WG = mmaGroupWarps(HD), COLS = mmaGradCols(HD);
  constexpr int NC = COLS / 8, NQ = mmaScoreCols(HD) / 8;
  constexpr bool split = mmaScoresSplit(HD), pre = mmaStepBuffers(HD) > 1;
  CPT_DYNAMIC_SMEM(bf16, Ks);
  bf16 *Vs = Ks + R * ld, *Pt = Vs + R * ld, *dSt = Pt + R * kPld, *steps = dSt + R * kPld;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c2 = 2 * (lane & 3), cg = warp % WG;
  const bool dPWarp = split && cg >= WG / 2;  // takes dP^T (else S^T, or both unsplit)
  const int r0 = warp / WG * 16 * MT, qc0 = split ? cg % (WG / 2) * NQ * 8 : 0, col0 = cg * COLS;
  const size_t head = (size_t)blockIdx.y * T_ * HD, rows = (size_t)blockIdx.y * T_;
  const int k0 = blockIdx.x * R;
  const float sl2 = scale * kLog2e;
  int key[MT][2];  // a lane's two keys in each of the warp's row tiles
CPT_UNROLL
  for (int m = 0; m < MT; m++) key[m][0] = k0 + r0 + 16 * m + g, key[m][1] = key[m][0] + 8;
  // The query block at q0 (Q, dO, log-sum-exp, D) into step buffer buf, by cp.async with two buffers.
  auto loadStep = [&](int q0, int buf) {
    bf16* Qb = steps + buf * mmaStepElems(HD);
    flashLoad<pre>(q + head, q0, T_, HD, Qb);
    flashLoad<pre>(dO + rowsHead(blockIdx.y, H, T_, HD), q0, T_, HD, Qb + kFlash * ld, kFlash, H * HD);
    float* st = reinterpret_cast<float*>(Qb + 2 * kFlash * ld);
    flashRowStats<pre>(lse + rows, D + rows, q0, T_, st, st + kFlash);
  };
  const int qFirst = k0 / kFlash * kFlash;
  if constexpr (pre) loadStep(qFirst, 0), cpAsyncCommit();
  flashLoad(k + head, k0, T_, HD, Ks, R);
  flashLoad(v + head, k0, T_, HD, Vs, R);
  float dK[MT][NC][4] = {}, dV[MT][NC][4] = {};
  for (int q0 = qFirst, buf = 0; q0 < T_; q0 += kFlash, buf = pre ? 1 - buf : 0) {  // the query blocks that see these keys
    if constexpr (pre) {
      cpAsyncWait<0>();  // this thread's copies of this query block have landed
      flashRowStatsLanded(reinterpret_cast<float*>(steps + buf * mmaStepElems(HD) + 2 * kFlash * ld));
    } else {
      __syncthreads();  // the previous step's tiles are no longer read
      loadStep(q0, 0);
    }
    __syncthreads();  // the tiles are everyone's; the previous step's P and dS are no longer read
    const bf16 *Qs = steps + buf * mmaStepElems(HD), *dOs = Qs + kFlash * ld;
    const float *lseS = reinterpret_cast<const float*>(dOs + kFlash * ld), *DS = lseS + kFlash;
    // S^T = K Q^T and dP^T = V dO^T: the warp's keys x its queries (dP^T into S in a dP warp)
    float S[MT][NQ][4] = {}, dP[split ? 1 : MT][NQ][4] = {};
    mmaScore<HD>(S, (dPWarp ? Vs : Ks) + r0 * ld, (dPWarp ? dOs : Qs) + qc0 * ld);
    if constexpr (!split) mmaScore<HD>(dP, Vs + r0 * ld, dOs + qc0 * ld);
    // P^T = exp(S^T scale - lse) (causal; queries past T_ see nothing), dS^T = P^T (dP^T - D) scale.
    // Masked only where some query of the warp's columns is before one of its keys or past T_.
    if (!dPWarp && (q0 + qc0 < k0 + r0 + 16 * MT - 1 || q0 + qc0 + 8 * NQ > T_))
CPT_UNROLL
      for (int m = 0; m < MT; m++)
        for (int n = 0; n < NQ; n++)
          for (int i = 0; i < 4; i++) {
            const int qa = q0 + qc0 + n * 8 + c2 + (i & 1);
            if (key[m][i >> 1] > qa || qa >= T_) S[m][n][i] = -INFINITY;
          }
    if (!dPWarp)
CPT_UNROLL
      for (int m = 0; m < MT; m++)
        for (int n = 0; n < NQ; n++)
          for (int r = 0; r < 2; r++) {
            const int e = (r0 + 16 * m + g + 8 * r) * kPld + qc0 + n * 8 + c2;
            float p[2], ds[2];
            for (int j = 0; j < 2; j++) {
              const int qi = qc0 + n * 8 + c2 + j;
              p[j] = ex2(fmaf(S[m][n][2 * r + j], sl2, -lseS[qi]));  // lseS in base 2
              if constexpr (!split) ds[j] = p[j] * (dP[m][n][2 * r + j] - DS[qi]) * scale;
            }
            *reinterpret_cast<uint32_t*>(Pt + e) = pack2(p[0], p[1]);
            if constexpr (!split) *reinterpret_cast<uint32_t*>(dSt + e) = pack2(ds[0], ds[1]);
          }
    if constexpr (split) {
      __syncthreads();  // P^T is in shared memory
      if (dPWarp) mmaScoreGrad(S, Pt, dSt, r0, qc0, scale, [&](int, int, int qi) { return DS[qi]; });
    }
    __syncthreads();
    // The next query block into the other buffer, which no warp reads since the barrier at the top;
    // issued here, where the score products' registers are free, it lands during the products below.
    if constexpr (pre)
      if (q0 + kFlash < T_) loadStep(q0 + kFlash, 1 - buf), cpAsyncCommit();
    for (int kk = 0; kk < kFlash; kk += 16) {  // dV += P^T dO, dK += dS^T Q: the warp's keys x its columns
      uint32_t ap[MT][4], as[MT][4], b[4];
CPT_UNROLL
      for (int m = 0; m < MT; m++)
        fragA(ap[m], Pt + (r0 + 16 * m) * kPld + kk, kPld), fragA(as[m], dSt + (r0 + 16 * m) * kPld + kk, kPld);
      for (int n = 0; n < NC; n += 2) {
        fragB(b, dOs + kk * ld + col0 + n * 8, ld);
CPT_UNROLL
        for (int m = 0; m < MT; m++) mma2(dV[m][n], dV[m][n + 1], ap[m], b);
        fragB(b, Qs + kk * ld + col0 + n * 8, ld);
CPT_UNROLL
        for (int m = 0; m < MT; m++) mma2(dK[m][n], dK[m][n + 1], as[m], b);
      }
    }
  }
CPT_UNROLL
  for (int m = 0; m < MT; m++) {
    mmaStoreGrad<HD, COLS, H8>(dK[m], key[m], col0, T_, H, dk, dqkv, 1, cs, sn);
    mmaStoreGrad<HD, COLS, H8 < 0 ? -1 : 0>(dV[m], key[m], col0, T_, H, dv, dqkv, 2, cs, sn);  // no rotary on V
  }
}

// dQ of one block of mmaKeys(HD) queries, out as dK is: grid (ceil(T_ / mmaKeys(HD)), B * H),
// block mmaBackwardThreads(HD); mmaBackwardSmem(HD). dO in rows, as for dK and dV.
template <int HD, int H8>
__global__ void mmaBackwardQKernel(const bf16* q, const bf16* k, const bf16* v, const bf16* dO, const float* lse,
                                   const float* D, float* dq, bf16* dqkv, const float* cs, const float* sn, int T_, int H,
                                   float scale) {
  constexpr int ld = flashLd(HD), R = mmaKeys(HD), MT = mmaRowTiles(HD), WG = mmaGroupWarps(HD), COLS = mmaGradCols(HD);
  constexpr int NC = COLS / 8, NK = mmaScoreCols(HD) / 8;
  constexpr bool split = mmaScoresSplit(HD), pre = mmaStepBuffers(HD) > 1;
  CPT_DYNAMIC_SMEM(bf16, Qs);
  bf16 *dOs = Qs + R * ld, *dSs = dOs + R * ld, *Ps = dSs + R * kPld, *steps = Ps + R * kPld;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c2 = 2 * (lane & 3), cg = warp % WG;
  const bool dPWarp = split && cg >= WG / 2;  // takes dP (else S, or both unsplit)
  const int r0 = warp / WG * 16 * MT, kc0 = split ? cg % (WG / 2) * NK * 8 : 0, col0 = cg * COLS;
  const size_t head = (size_t)blockIdx.y * T_ * HD, rows = (size_t)blockIdx.y * T_;
  const int q0 = blockIdx.x * R, kEnd = min(T_, q0 + R);
  const float sl2 = scale * kLog2e;
  int row[MT][2];  // a lane's two queries in each of the warp's row tiles, their log-sum-exp (base 2) and D
  float lr[MT][2], dr[MT][2];
CPT_UNROLL
  for (int m = 0; m < MT; m++)
    for (int r = 0; r < 2; r++) {
      row[m][r] = q0 + r0 + 16 * m + g + 8 * r;
      lr[m][r] = row[m][r] < T_ ? lse[rows + row[m][r]] * kLog2e : 0.f, dr[m][r] = row[m][r] < T_ ? D[rows + row[m][r]] : 0.f;
    }
  // The key block at k0 (K, V) into step buffer buf, by cp.async with two buffers.
  auto loadStep = [&](int k0, int buf) {
    bf16* Kb = steps + buf * mmaStepElems(HD);
    flashLoad<pre>(k + head, k0, T_, HD, Kb);
    flashLoad<pre>(v + head, k0, T_, HD, Kb + kFlash * ld);
  };
  if constexpr (pre) loadStep(0, 0), cpAsyncCommit();
  flashLoad(q + head, q0, T_, HD, Qs, R);
  flashLoad(dO + rowsHead(blockIdx.y, H, T_, HD), q0, T_, HD, dOs, R, H * HD);
  float dQ[MT][NC][4] = {};
  for (int k0 = 0, buf = 0; k0 < kEnd; k0 += kFlash, buf = pre ? 1 - buf : 0) {  // the key blocks these queries see
    if constexpr (pre) {
      cpAsyncWait<0>();  // this thread's copies of this key block have landed
    } else {
      __syncthreads();  // the previous step's tiles are no longer read
      loadStep(k0, 0);
    }
    __syncthreads();  // the tiles are everyone's; the previous step's dS is no longer read
    const bf16 *Ks = steps + buf * mmaStepElems(HD), *Vs = Ks + kFlash * ld;
    // S = Q K^T and dP = dO V^T: the warp's queries x its keys (dP into S in a dP warp)
    float S[MT][NK][4] = {}, dP[split ? 1 : MT][NK][4] = {};
    mmaScore<HD>(S, (dPWarp ? dOs : Qs) + r0 * ld, (dPWarp ? Vs : Ks) + kc0 * ld);
    if constexpr (!split) mmaScore<HD>(dP, dOs + r0 * ld, Vs + kc0 * ld);
    // Masked only where some key of the warp's columns is past one of its queries, or a query past T_.
    if (!dPWarp && (k0 + kc0 + 8 * NK - 1 > q0 + r0 || q0 + r0 + 16 * MT > T_))
CPT_UNROLL
      for (int m = 0; m < MT; m++)
        for (int n = 0; n < NK; n++)
          for (int i = 0; i < 4; i++) {
            const int key = k0 + kc0 + n * 8 + c2 + (i & 1);
            if (key > row[m][i >> 1] || row[m][i >> 1] >= T_) S[m][n][i] = -INFINITY;
          }
    if (!dPWarp)  // P into Ps for the dP warps, or dS straight into dSs unsplit
CPT_UNROLL
      for (int m = 0; m < MT; m++)
        for (int n = 0; n < NK; n++)
          for (int r = 0; r < 2; r++) {
            float x[2];
            for (int j = 0; j < 2; j++) {
              x[j] = ex2(fmaf(S[m][n][2 * r + j], sl2, -lr[m][r]));
              if constexpr (!split) x[j] *= (dP[m][n][2 * r + j] - dr[m][r]) * scale;
            }
            *reinterpret_cast<uint32_t*>((split ? Ps : dSs) + (r0 + 16 * m + g + 8 * r) * kPld + kc0 + n * 8 + c2) = pack2(x[0], x[1]);
          }
    if constexpr (split) {
      __syncthreads();  // P is in shared memory
      if (dPWarp) mmaScoreGrad(S, Ps, dSs, r0, kc0, scale, [&](int m, int r, int) { return dr[m][r]; });
    }
    __syncthreads();
    if constexpr (pre)  // the next key block, as the dK/dV kernel's next query block
      if (k0 + kFlash < kEnd) loadStep(k0 + kFlash, 1 - buf), cpAsyncCommit();
    for (int kk = 0; kk < kFlash; kk += 16) {  // dQ += dS K: the warp's queries x its columns
      uint32_t a[MT][4], b[4];
CPT_UNROLL
      for (int m = 0; m < MT; m++) fragA(a[m], dSs + (r0 + 16 * m) * kPld + kk, kPld);
      for (int n = 0; n < NC; n += 2) {
        fragB(b, Ks + kk * ld + col0 + n * 8, ld);
CPT_UNROLL
        for (int m = 0; m < MT; m++) mma2(dQ[m][n], dQ[m][n + 1], a[m], b);
      }
    }
  }
CPT_UNROLL
  for (int m = 0; m < MT; m++) mmaStoreGrad<HD, COLS, H8>(dQ[m], row[m], col0, T_, H, dq, dqkv, 0, cs, sn);
}

}  // namespace cuda
}  // namespace cpt
