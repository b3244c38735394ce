#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <new>
#include <stdexcept>

#include <sys/mman.h>
#include <unistd.h>

#include "bf16.h"

namespace cpt {

AlignedBuf::~AlignedBuf() { std::free(p); }

void* allocAligned(size_t bytes) {
  // Large buffers (packed weights, activations) on 2 MiB boundaries, asking for transparent huge
  // pages: the products stream them panel by panel, and 4 KiB pages cost TLB misses there.
  constexpr size_t kHuge = (size_t)2 << 20;
  const size_t align = bytes >= 2 * kHuge ? kHuge : 64;
  bytes = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes ? bytes : align);
  if (!p) throw std::bad_alloc();
  if (align == kHuge) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: fine if refused
  return p;
}

float* AlignedBuf::get(size_t need) {
  if (need > n) {
    std::free(p);
    p = nullptr, n = 0;  // stays empty if the allocation throws
    p = static_cast<float*>(allocAligned(need * sizeof(float)));
    n = need;
  }
  return p;
}

Gemm::Gemm(const Kernel* k, int threads, bf16::Path bf16) : k_(k), bf16_(bf16), apack_(threads), bpack_(threads) {
  // Blocking from this CPU's caches: the micro-kernel's A rows (MR x kc) stay in L1 while it
  // streams B panels (kc x NR) from L2, so kc fills three quarters of L1 with A; a slab of B
  // (kc x nc) fills three eighths of L2, and A goes by blocks of two micro-panels. On this 48 KiB
  // L1 / 2 MiB L2 Intel part: kc 768, nc 256, mc 24, which measured 17% faster on Pythia-160m's
  // layer and head products than the B-panel-in-L1 blocking it replaced (kc 256, nc 3072, mc 144;
  // a sweep over kc 256-3072, nc 128-3072, mc 12-288: docs/benchmarks.md). A deep kc also means
  // C is written once rather than once per 256 of depth. 32 KiB L1 / 1 MiB L2 (Zen 4): kc 512,
  // nc 192; Zen 3 (AVX2, MR 6, 512 KiB L2): 768 and 64 (both unmeasured).
  const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const long l1b = l1 > 0 ? l1 : 32 * 1024, l2b = l2 > 0 ? l2 : 512 * 1024;
  const int MR = k_->mr, NR = k_->nr;
  kc_ = std::clamp((int)(l1b * 3 / 4 / (MR * (long)sizeof(float))) / 16 * 16, 128, 768);
  nc_ = std::clamp((int)(l2b * 3 / 8 / (kc_ * (long)sizeof(float))) / NR * NR, 4 * NR, 3072 / NR * NR);
  mc_ = 2 * MR;
}

void Gemm::packA(float* dst, bool ta, const float* A, int lda, int i0, int mc, int p0, int kc) const {
  const int MR = k_->mr;
  for (int ir = 0; ir < mc; ir += MR) {
    const int m = std::min(MR, mc - ir);
    float* d = dst + (size_t)ir * kc;
    if (!ta) {
      for (int i = 0; i < m; i++) {
        const float* src = A + (size_t)(i0 + ir + i) * lda + p0;
        for (int p = 0; p < kc; p++) d[p * MR + i] = src[p];
      }
    } else {
      for (int p = 0; p < kc; p++) {
        const float* src = A + (size_t)(p0 + p) * lda + i0 + ir;
        for (int i = 0; i < m; i++) d[p * MR + i] = src[i];
      }
    }
    if (m < MR)
      for (int p = 0; p < kc; p++)
        for (int i = m; i < MR; i++) d[p * MR + i] = 0.f;
  }
}

void Gemm::packB(float* dst, bool tb, const float* B, int ldb, int p0, int kc, int j0, int nc) const {
  const int NR = k_->nr;
  for (int jr = 0; jr < nc; jr += NR) {
    const int n = std::min(NR, nc - jr);
    float* d = dst + (size_t)jr * kc;
    if (!tb) {
      for (int p = 0; p < kc; p++) {
        const float* src = B + (size_t)(p0 + p) * ldb + j0 + jr;
        float* dp = d + p * NR;
        for (int j = 0; j < n; j++) dp[j] = src[j];
        for (int j = n; j < NR; j++) dp[j] = 0.f;
      }
    } else {
      for (int j = 0; j < n; j++) {
        const float* src = B + (size_t)(j0 + jr + j) * ldb + p0;
        for (int p = 0; p < kc; p++) d[p * NR + j] = src[p];
      }
      if (n < NR)
        for (int p = 0; p < kc; p++)
          for (int j = n; j < NR; j++) d[p * NR + j] = 0.f;
    }
  }
}

void Gemm::macro(const float* Ap, const float* Bp, int mc, int nc, int kc, float* C, int ldc, bool acc,
                 const float* bias) const {
  const int MR = k_->mr, NR = k_->nr;
  for (int jr = 0; jr < nc; jr += NR) {
    const int n = std::min(NR, nc - jr);
    const float* b = Bp + (size_t)jr * kc;
    for (int ir = 0; ir < mc; ir += MR) {
      const int m = std::min(MR, mc - ir);
      k_->micro(kc, Ap + (size_t)ir * kc, b, C + (size_t)ir * ldc + jr, ldc, m, n, acc ? 1 : 0, bias ? bias + jr : nullptr);
    }
  }
}

void Gemm::macroDirect(const float* A, int lda, float* edge, const float* Bp, int mc, int nc, int kc, float* C,
                       int ldc, bool acc, const float* bias, int ldp) const {
  const int MR = k_->mr, NR = k_->nr;
  if (!ldp) ldp = kc;
  const int full = mc / MR * MR;
  if (full < mc) packA(edge, false, A, lda, full, mc - full, 0, kc);
  for (int jr = 0; jr < nc; jr += NR) {
    const int n = std::min(NR, nc - jr);
    const float* b = Bp + (size_t)jr * ldp;
    const float* bi = bias ? bias + jr : nullptr;
    for (int ir = 0; ir < full; ir += MR) {
      k_->microDirect(kc, A + (size_t)ir * lda, lda, b, C + (size_t)ir * ldc + jr, ldc, n, acc ? 1 : 0, bi);
    }
    if (full < mc) k_->micro(kc, edge, b, C + (size_t)full * ldc + jr, ldc, mc - full, n, acc ? 1 : 0, bi);
  }
}

void Gemm::block(float* ap, bool ta, const float* A, int lda, int ic, int mc, int pc, int kc, const float* Bp, int nc,
                 float* C, int ldc, bool acc, const float* bias) const {
  if (ta) {
    packA(ap, ta, A, lda, ic, mc, pc, kc);
    macro(ap, Bp, mc, nc, kc, C, ldc, acc, bias);
  } else {
    macroDirect(A + (size_t)ic * lda + pc, lda, ap, Bp, mc, nc, kc, C, ldc, acc, bias);
  }
}

static void zeroOrKeep(float* C, int ldc, int M, int N, bool acc) {
  if (acc) return;
  for (int i = 0; i < M; i++) std::memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
}

void Gemm::st(int tid, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
              float* C, int ldc, bool acc) {
  if (bf16()) return st16(tid, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zeroOrKeep(C, ldc, M, N, acc);
  const int MR = k_->mr, NR = k_->nr;
  float* ap = apack_[tid].get((size_t)(mc_ + MR) * kc_);
  float* bp = bpack_[tid].get((size_t)(nc_ + NR) * kc_);
  for (int jc = 0; jc < N; jc += nc_) {
    const int nc = std::min(nc_, N - jc);
    for (int pc = 0; pc < K; pc += kc_) {
      const int kc = std::min(kc_, K - pc);
      packB(bp, tb, B, ldb, pc, kc, jc, nc);
      for (int ic = 0; ic < M; ic += mc_) {
        const int mc = std::min(mc_, M - ic);
        block(ap, ta, A, lda, ic, mc, pc, kc, bp, nc, C + (size_t)ic * ldc + jc, ldc, acc || pc > 0);
      }
    }
  }
}

void Gemm::mt(ThreadPool& pool, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
              int ldb, float* C, int ldc, bool acc) {
  if (bf16()) return mt16(pool, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zeroOrKeep(C, ldc, M, N, acc);
  const int nt = pool.size();
  if (nt == 1) return st(0, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
  const int MR = k_->mr, NR = k_->nr;
  const int mBlocks = (M + MR - 1) / MR;
  // Split over rows of C when there are enough of them, else over column panels; every
  // element of C is owned by one thread and summed in a fixed order (deterministic).
  const bool splitRows = mBlocks >= 2 * nt || M >= N;
  if (splitRows) {
    // Per depth panel: op(B) packed once for up to kChunkCols of its columns, then each thread
    // runs its rows against every nc slab of them; with ta, each thread packs its rows of A once
    // per panel (by up to kChunkRows), not once per slab. Three pool round trips per panel and
    // column chunk, whatever N is.
    constexpr int kChunkCols = 4096, kChunkRows = 1024;
    const int colChunk = std::max(nc_, kChunkCols / nc_ * nc_);
    for (int pc = 0; pc < K; pc += kc_) {
      const int kc = std::min(kc_, K - pc);
      for (int j0 = 0; j0 < N; j0 += colChunk) {
        const int nw = std::min(colChunk, N - j0), panels = (nw + NR - 1) / NR;
        float* bp = shared_b_.get((size_t)panels * NR * kc_);
        pool.parallelFor(panels, [&](int, int64_t b, int64_t e) {
          const int p0 = (int)b * NR, p1 = std::min(nw, (int)e * NR);
          packB(bp + (size_t)p0 * kc, tb, B, ldb, pc, kc, j0 + p0, p1 - p0);
        });
        pool.parallelFor(mBlocks, [&](int tid, int64_t b, int64_t e) {
          const int r0 = (int)b * MR, r1 = std::min(M, (int)e * MR);
          float* ap = apack_[tid].get((size_t)((ta ? kChunkRows : mc_) + MR) * kc_);
          for (int q0 = r0; q0 < r1; q0 += kChunkRows) {
            const int q1 = std::min(r1, q0 + kChunkRows);
            if (ta) packA(ap, true, A, lda, q0, q1 - q0, pc, kc);
            for (int jc = 0; jc < nw; jc += nc_) {
              const int nc = std::min(nc_, nw - jc);
              for (int ic = q0; ic < q1; ic += mc_) {
                const int mc = std::min(mc_, q1 - ic);
                float* c = C + (size_t)ic * ldc + j0 + jc;
                if (ta) macro(ap + (size_t)(ic - q0) * kc, bp + (size_t)jc * kc, mc, nc, kc, c, ldc, acc || pc > 0);
                else macroDirect(A + (size_t)ic * lda + pc, lda, ap, bp + (size_t)jc * kc, mc, nc, kc, c, ldc, acc || pc > 0);
              }
            }
          }
        });
      }
    }
  } else {
    const int panels = (N + NR - 1) / NR;
    pool.parallelFor(panels, [&](int tid, int64_t b, int64_t e) {
      const int j0 = (int)b * NR, j1 = std::min(N, (int)e * NR);
      st(tid, ta, tb, M, j1 - j0, K, A, lda, tb ? B + (size_t)j0 * ldb : B + j0, ldb, C + j0, ldc, acc);
    });
  }
}

void Gemm::packAll(ThreadPool& pool, bool tb, int K, int N, const float* B, int ldb, PackedB& out) {
  if (bf16()) return packAll16(pool, tb, K, N, B, ldb, out);
  const int NR = k_->nr;
  const size_t Np = (size_t)(N + NR - 1) / NR * NR;
  float* dst = out.buf.get(Np * K);
  out.K = K, out.N = N;
  struct Blk { int jc, nc, pc, kc; size_t off; };
  std::vector<Blk> blocks;
  size_t off = 0;
  for (int jc = 0; jc < N; jc += nc_) {
    const int nc = std::min(nc_, N - jc);
    for (int pc = 0; pc < K; pc += kc_) {
      const int kc = std::min(kc_, K - pc);
      blocks.push_back({jc, nc, pc, kc, off});
      off += (size_t)(nc + NR - 1) / NR * NR * kc;
    }
  }
  pool.parallelFor((int64_t)blocks.size(), [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const Blk& k = blocks[i];
      packB(dst + k.off, tb, B, ldb, k.pc, k.kc, k.jc, k.nc);
    }
  });
}

void Gemm::mtPacked(ThreadPool& pool, bool ta, int M, const float* A, int lda, const PackedB& pb, float* C, int ldc,
                    bool acc, bool sameA, const float* bias) {
  if (bias && acc) throw std::logic_error("mtPacked: a bias only without acc");
  if (bf16()) return mtPacked16(pool, ta, M, A, lda, pb, C, ldc, acc, sameA, bias);
  const int N = pb.N, K = pb.K, MR = k_->mr;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 && !bias) return zeroOrKeep(C, ldc, M, N, acc);
  const int mBlocks = (M + MR - 1) / MR;
  pool.parallelFor(mBlocks, [&](int tid, int64_t b, int64_t e) {
    const int r0 = (int)b * MR, r1 = std::min(M, (int)e * MR);
    if (K <= 0)  // C = bias
      for (int r = r0; r < r1; r++) std::memcpy(C + (size_t)r * ldc, bias, sizeof(float) * N);
    else rowsPacked(tid, ta, r0, r1, A, lda, pb, C, ldc, acc, bias);
  });
}

void Gemm::rowsPacked(int tid, bool ta, int r0, int r1, const float* A, int lda, const PackedB& pb, float* C, int ldc,
                      bool acc, const float* bias) {
  const int N = pb.N, K = pb.K, MR = k_->mr, NR = k_->nr;
  float* ap = apack_[tid].get((size_t)(mc_ + MR) * kc_);
  size_t off = 0;
  for (int jc = 0; jc < N; jc += nc_) {
    const int nc = std::min(nc_, N - jc);
    for (int pc = 0; pc < K; pc += kc_) {
      const int kc = std::min(kc_, K - pc);
      for (int ic = r0; ic < r1; ic += mc_) {
        const int mc = std::min(mc_, r1 - ic);
        block(ap, ta, A, lda, ic, mc, pc, kc, pb.buf.p + off, nc, C + (size_t)ic * ldc + jc, ldc, acc || pc > 0,
              bias && pc == 0 ? bias + jc : nullptr);
      }
      off += (size_t)(nc + NR - 1) / NR * NR * kc;
    }
  }
}

void Gemm::packRows(const float* A, int lda, int M, int K, PackedA& out) const {
  out.A = A, out.lda = lda, out.M = M, out.K = K;
  if (bf16())
    bf16::packA(reinterpret_cast<uint16_t*>(out.buf.get(((size_t)bf16::pad(M) * bf16::pad(K) + 1) / 2)), false, A, lda, M, K, 0,
                bf16::pad(M));
}

void Gemm::stPacked(int tid, const PackedA& a, int i0, int i1, const PackedB& pb, float* C, int ldc) {
  if (i0 % 32 || a.K != pb.K) throw std::logic_error("stPacked: rows from a multiple of 32, equal depths");
  const int N = pb.N, K = pb.K, M = i1 - i0;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zeroOrKeep(C, ldc, M, N, false);
  if (!bf16()) {
    // rowsPacked indexes C by A's rows: shift A so that row i0 is row 0
    return rowsPacked(tid, false, 0, M, a.A + (size_t)i0 * a.lda, a.lda, pb, C, ldc, false);
  }
  const uint16_t* ap = reinterpret_cast<const uint16_t*>(a.buf.p) + (size_t)i0 * bf16::pad(K);  // 16-row panels
  bf16::compute(bf16_, ap, reinterpret_cast<const uint16_t*>(pb.buf.p), M, N, K, 0, bf16::pad(M), 0, bf16::pad(N), C, ldc,
                false);
}

static uint16_t* as16(AlignedBuf& b, size_t n) { return reinterpret_cast<uint16_t*>(b.get((n + 1) / 2)); }

void Gemm::packAll16(ThreadPool& pool, bool tb, int K, int N, const float* B, int ldb, PackedB& out) {
  const int Kp = bf16::pad(K), Np = bf16::pad(N);
  uint16_t* dst = as16(out.buf, (size_t)Np * Kp);
  out.K = K, out.N = N;
  pool.parallelFor(Np / 16, [&](int, int64_t b, int64_t e) {
    bf16::packB(dst, tb, B, ldb, K, N, (int)b * 16, (int)e * 16);
  });
}

void Gemm::mtPacked16(ThreadPool& pool, bool ta, int M, const float* A, int lda, const PackedB& pb, float* C,
                      int ldc, bool acc, bool sameA, const float* bias) {
  const int N = pb.N, K = pb.K;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!bias) return zeroOrKeep(C, ldc, M, N, acc);
    for (int r = 0; r < M; r++) std::memcpy(C + (size_t)r * ldc, bias, sizeof(float) * N);
    return;
  }
  const int Kp = bf16::pad(K), Mp = bf16::pad(M), Np = bf16::pad(N);
  uint16_t* ap;
  if (sameA) {
    if (a16From_ != A || a16M_ != M || a16K_ != K) throw std::logic_error("mtPacked: sameA with another A");
    ap = reinterpret_cast<uint16_t*>(a16_.p);
  } else {
    ap = as16(a16_, (size_t)Mp * Kp);
    pool.parallelFor(Mp / 16, [&](int, int64_t b, int64_t e) {
      bf16::packA(ap, ta, A, lda, M, K, (int)b * 16, (int)e * 16);
    });
    a16From_ = A, a16M_ = M, a16K_ = K;
  }
  const uint16_t* bp = reinterpret_cast<const uint16_t*>(pb.buf.p);
  const int mBlocks = Mp / 32, nBlocks = Np / 32, nt = pool.size();
  // Each 32x32 block of C belongs to one task and is summed over the full depth in one fixed
  // order, so how the blocks are split does not change a bit of the result.
  if (mBlocks >= 2 * nt || mBlocks >= nBlocks) {
    pool.parallelFor(mBlocks, [&](int, int64_t b, int64_t e) {
      bf16::compute(bf16_, ap, bp, M, N, K, (int)b * 32, (int)e * 32, 0, Np, C, ldc, acc, bias);
    });
  } else {
    pool.parallelFor(nBlocks, [&](int, int64_t b, int64_t e) {
      bf16::compute(bf16_, ap, bp, M, N, K, 0, Mp, (int)b * 32, (int)e * 32, C, ldc, acc, bias);
    });
  }
}

void Gemm::mt16(ThreadPool& pool, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
                int ldb, float* C, int ldc, bool acc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zeroOrKeep(C, ldc, M, N, acc);
  packAll16(pool, tb, K, N, B, ldb, b16_);
  mtPacked16(pool, ta, M, A, lda, b16_, C, ldc, acc, false, nullptr);
}

void Gemm::packOne(bool tb, int K, int N, const float* B, int ldb, PackedB& out) const {
  out.K = K, out.N = N;
  if (bf16()) {
    bf16::packB(as16(out.buf, (size_t)bf16::pad(N) * bf16::pad(K)), tb, B, ldb, K, N, 0, bf16::pad(N));
    return;
  }
  // fp32: NR-column panels over the whole depth (not blocked by kc), so that a prefix of the
  // columns is a prefix of the panels and a prefix of the depth a prefix of each panel.
  const int NR = k_->nr;
  packB(out.buf.get((size_t)(N + NR - 1) / NR * NR * K), tb, B, ldb, 0, K, 0, N);
}

void Gemm::stPrefix(int tid, int M, int N, int K, const float* A, int lda, const PackedB& pb, float* C, int ldc) {
  if (N > pb.N || K > pb.K) throw std::logic_error("stPrefix: within the packed B");
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zeroOrKeep(C, ldc, M, N, false);
  if (!bf16()) {  // one pass over the whole depth: panels pb.K apart
    float* edge = apack_[tid].get((size_t)(mc_ + k_->mr) * std::max(kc_, K));
    for (int jc = 0; jc < N; jc += nc_)
      for (int ic = 0; ic < M; ic += mc_)
        macroDirect(A + (size_t)ic * lda, lda, edge, pb.buf.p + (size_t)jc * pb.K, std::min(mc_, M - ic),
                    std::min(nc_, N - jc), K, C + (size_t)ic * ldc + jc, ldc, false, nullptr, pb.K);
    return;
  }
  const int Mp = bf16::pad(M);
  uint16_t* ap = as16(apack_[tid], (size_t)Mp * bf16::pad(K));
  bf16::packA(ap, false, A, lda, M, K, 0, Mp);
  bf16::compute(bf16_, ap, reinterpret_cast<const uint16_t*>(pb.buf.p), M, N, K, 0, Mp, 0, bf16::pad(N), C, ldc, false,
                nullptr, bf16::pad(pb.K));
}

// Single-threaded bf16 product in thread tid's scratch: both operands packed here (attention's
// per-head products, whose operands change with every head).
void Gemm::st16(int tid, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
                float* C, int ldc, bool acc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zeroOrKeep(C, ldc, M, N, acc);
  const int Kp = bf16::pad(K), Mp = bf16::pad(M), Np = bf16::pad(N);
  uint16_t* ap = as16(apack_[tid], (size_t)Mp * Kp);
  uint16_t* bp = as16(bpack_[tid], (size_t)Np * Kp);
  bf16::packA(ap, ta, A, lda, M, K, 0, Mp);
  bf16::packB(bp, tb, B, ldb, K, N, 0, Np);
  bf16::compute(bf16_, ap, bp, M, N, K, 0, Mp, 0, Np, C, ldc, acc);
}

}  // namespace cpt
