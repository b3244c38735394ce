// Packed, cache-blocked SGEMM on top of a run-time selected micro-kernel.
// C[M x N] (= or +=) op(A)[M x K] * op(B)[K x N], all row-major. ta: A is stored [K x M];
// tb: B is stored [N x K]. These cover the three shapes of a linear layer: forward (NT),
// input gradient (NN) and weight gradient (TN). A Gemm made with a bf16 path runs its
// entry points on that opt-in bf16 path (AMX tiles or AVX512-BF16, fp32 accumulation; bf16.h),
// attention's per-head products (st) included; only pass a path bf16::supports().
#pragma once
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "bf16.h"
#include "kernel.h"
#include "threadpool.h"

namespace cpt {

// 64-byte aligned memory (free with std::free); from 4 MiB on, 2 MiB aligned with transparent
// huge pages asked for.
void* allocAligned(size_t bytes);

// std::vector storage from allocAligned (activations).
template <class T>
struct AlignedAlloc {
  using value_type = T;
  AlignedAlloc() = default;
  template <class U>
  AlignedAlloc(const AlignedAlloc<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(allocAligned(n * sizeof(T))); }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const AlignedAlloc<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAlloc<U>&) const { return false; }
};
template <class T>
using AlignedVec = std::vector<T, AlignedAlloc<T>>;

struct AlignedBuf {
  float* p = nullptr;
  size_t n = 0;
  AlignedBuf() = default;
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  ~AlignedBuf();
  float* get(size_t need);  // grows (never shrinks), 64-byte aligned, contents not preserved
};

// op(B) packed once for many GEMMs that share it (the LM head weight across row chunks): fp32
// panels, or bf16 ones (bf16.h's layout) when packed by a bf16 Gemm.
struct PackedB {
  AlignedBuf buf;
  int K = 0, N = 0;
};

// Rows of A prepared once for one thread's products against several packed Bs: bf16 packs them
// (bf16.h's layout); fp32 reads A in place.
struct PackedA {
  AlignedBuf buf;
  const float* A = nullptr;
  int lda = 0, M = 0, K = 0;
};

class Gemm {
 public:
  Gemm(const Kernel* k, int threads, bf16::Path bf16 = bf16::Path::none);
  const Kernel* kernel() const { return k_; }
  bool bf16() const { return bf16_ != bf16::Path::none; }
  bf16::Path bf16Path() const { return bf16_; }
  // Multithreaded over the pool (call from the main thread only).
  void mt(ThreadPool& pool, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
          int ldb, float* C, int ldc, bool acc);
  void packAll(ThreadPool& pool, bool tb, int K, int N, const float* B, int ldb, PackedB& out);
  // C = op(A) * (pre-packed B); multithreaded over rows of C. sameA: A is the previous call's
  // (one A against several packed Bs: the bf16 path packs it once; fp32 reads A in place anyway).
  // bias (length N, only without acc): C = op(A) B + bias, bitwise what C = bias; C += op(A) B gives.
  void mtPacked(ThreadPool& pool, bool ta, int M, const float* A, int lda, const PackedB& pb, float* C, int ldc,
                bool acc, bool sameA = false, const float* bias = nullptr);
  // One thread's rows (inside a pool task): packRows once, then C = rows [i0, i1) of A times a
  // packed B, for as many Bs and row ranges as wanted (i0 a multiple of 32). Each element of C
  // is summed in the same order as by mtPacked, whatever the rows around it.
  void packRows(const float* A, int lda, int M, int K, PackedA& out) const;
  void stPacked(int tid, const PackedA& a, int i0, int i1, const PackedB& pb, float* C, int ldc);
  // Inside a pool task: op(B) of one attention head packed once (packOne), then products with
  // its first N columns and first K rows (stPrefix) for each query block, instead of packing K
  // and V again per block. fp32 sums each element over the whole depth in one pass.
  void packOne(bool tb, int K, int N, const float* B, int ldb, PackedB& out) const;
  void stPrefix(int tid, int M, int N, int K, const float* A, int lda, const PackedB& pb, float* C, int ldc);
  // Single-threaded, using thread `tid`'s scratch (call from inside a pool task).
  void st(int tid, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
          float* C, int ldc, bool acc);

 private:
  void packA(float* dst, bool ta, const float* A, int lda, int i0, int mc, int p0, int kc) const;
  void packB(float* dst, bool tb, const float* B, int ldb, int p0, int kc, int j0, int nc) const;
  // bias (at C's first column, or null; only without acc) is added as C is first stored.
  void macro(const float* Ap, const float* Bp, int mc, int nc, int kc, float* C, int ldc, bool acc,
             const float* bias = nullptr) const;
  // Row-major A used in place for full row panels; edge rows are packed into `edge`. B's panels
  // are ldp rows deep, of which the first kc are used (0: kc).
  void macroDirect(const float* A, int lda, float* edge, const float* Bp, int mc, int nc, int kc, float* C, int ldc,
                   bool acc, const float* bias = nullptr, int ldp = 0) const;
  // Rows [r0, r1) of C = op(A) * (pre-packed fp32 B), with thread tid's scratch.
  void rowsPacked(int tid, bool ta, int r0, int r1, const float* A, int lda, const PackedB& pb, float* C, int ldc,
                  bool acc, const float* bias = nullptr);
  // Pack A (when transposed) and run the macro-kernel on one block.
  void block(float* ap, bool ta, const float* A, int lda, int ic, int mc, int pc, int kc, const float* Bp, int nc,
             float* C, int ldc, bool acc, const float* bias = nullptr) const;
  // The bf16 path: same contracts as mt, packAll and mtPacked, with both operands rounded to bf16
  // (nearest even) when packed. Every element of C is summed in a fixed order independent of the
  // thread count (deterministic).
  void mt16(ThreadPool& pool, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
            int ldb, float* C, int ldc, bool acc);
  void packAll16(ThreadPool& pool, bool tb, int K, int N, const float* B, int ldb, PackedB& out);
  void mtPacked16(ThreadPool& pool, bool ta, int M, const float* A, int lda, const PackedB& pb, float* C, int ldc,
                  bool acc, bool sameA, const float* bias);
  void st16(int tid, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
            int ldc, bool acc);
  const Kernel* k_;
  int kc_, mc_, nc_;  // blocking from the cache sizes: depth, rows of A, columns of B
  bf16::Path bf16_;
  std::vector<AlignedBuf> apack_, bpack_;
  AlignedBuf shared_b_;
  AlignedBuf a16_;  // packed bf16 A (shared by the pool's threads)
  const float* a16From_ = nullptr;  // the A it was packed from, with its shape
  int a16M_ = 0, a16K_ = 0;
  PackedB b16_;     // packed bf16 B for mt16
};

}  // namespace cpt
