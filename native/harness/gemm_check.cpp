// The fp32 GEMM's entry points on every kernel this CPU runs, against a double reference: mt in
// its three shapes (NN, NT, TN) with and without accumulation, packed B (mtPacked with and
// without bias, packRows + stPacked, packOne + stPrefix), and st; on sizes that leave ragged row
// and column edges and depths past one panel (kc), so every pass of the blocking runs. Also
// checks mt and mtPacked give the same bits on 1 and 3 threads, and a bias the same bits as
// adding the product to it. Prints the worst error per kernel and entry point; exits 1 past the
// bound.
// Usage: gemm_check (run by test/native/kernels.test.ts).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../src/gemm.h"

using namespace cpt;

namespace {

struct Shape {
  int M, N, K;
};

// C (row-major, ldc = N) against sum_p op(A)[i,p] op(B)[p,j] (+ C0 when acc, + bias): the worst
// error relative to sum_p |op(A) op(B)| (+ the magnitudes added), which bounds fp32 summation.
double worst(const std::vector<float>& C, const std::vector<float>& A, const std::vector<float>& B, const std::vector<float>* C0,
             const float* bias, bool ta, bool tb, Shape s) {
  double w = 0;
  for (int i = 0; i < s.M; i++)
    for (int j = 0; j < s.N; j++) {
      double ref = 0, mag = 0;
      for (int p = 0; p < s.K; p++) {
        const double a = ta ? A[(size_t)p * s.M + i] : A[(size_t)i * s.K + p];
        const double b = tb ? B[(size_t)j * s.K + p] : B[(size_t)p * s.N + j];
        ref += a * b, mag += std::fabs(a * b);
      }
      if (C0) ref += (*C0)[(size_t)i * s.N + j], mag += std::fabs((*C0)[(size_t)i * s.N + j]);
      if (bias) ref += bias[j], mag += std::fabs(bias[j]);
      w = std::max(w, std::fabs(C[(size_t)i * s.N + j] - ref) / (mag + 1e-30));
    }
  return w;
}

std::vector<float> rnd(std::mt19937& g, size_t n) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace

int main() {
  // Relative to sum |a b|: fp32 sums of these depths measure ~2e-7; a bf16 rounding would be
  // ~4e-3, a dropped or repeated panel, row or column O(1).
  const double kBound = 2e-6;
  // The last one, for mt only: more columns than one packed chunk, and with ta more rows per thread
  // than one packed chunk of A.
  const Shape shapes[] = {{37, 70, 1000}, {130, 300, 1700}, {5, 3, 1}, {64, 33, 769}, {25, 97, 64}, {3500, 4150, 20}};
  bool ok = true, any = false;
  for (const char* name : {"scalar", "avx2", "avx512"}) {
    const Kernel* k = selectKernel(name);
    if (!k) continue;
    any = true;
    ThreadPool pool(3), one(1);
    Gemm g(k, 3), g1(k, 1);
    std::mt19937 rng(7);
    double wMt = 0, wPacked = 0, wSt = 0;
    bool same = true;
    for (const Shape& s : shapes) {
      const auto A = rnd(rng, (size_t)s.M * s.K), B = rnd(rng, (size_t)s.K * s.N), C0 = rnd(rng, (size_t)s.M * s.N);
      const auto bias = rnd(rng, s.N);
      const bool big = s.M * (long)s.N > 1000000;  // mt only: the reference costs M N K
      const bool shapesTaTb[3][2] = {{false, false}, {false, true}, {true, false}};
      for (const auto& tt : shapesTaTb) {
        const bool ta = tt[0], tb = tt[1];
        const int lda = ta ? s.M : s.K, ldb = tb ? s.K : s.N;
        for (bool acc : {false, true}) {
          auto C = C0, C1 = C0;
          g.mt(pool, ta, tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C.data(), s.N, acc);
          g1.mt(one, ta, tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C1.data(), s.N, acc);
          wMt = std::max(wMt, worst(C, A, B, acc ? &C0 : nullptr, nullptr, ta, tb, s));
          same = same && !std::memcmp(C.data(), C1.data(), C.size() * sizeof(float));
          if (big) continue;
          C = C0;
          pool.run([&](int tid) {
            if (tid == 0) g.st(0, ta, tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C.data(), s.N, acc);
          });
          wSt = std::max(wSt, worst(C, A, B, acc ? &C0 : nullptr, nullptr, ta, tb, s));
        }
      }
      if (big) continue;
      for (bool tb : {false, true}) {
        PackedB pb, pb1;
        g.packAll(pool, tb, s.K, s.N, B.data(), tb ? s.K : s.N, pb);
        g1.packAll(one, tb, s.K, s.N, B.data(), tb ? s.K : s.N, pb1);
        for (int mode = 0; mode < 3; mode++) {  // assign, accumulate, bias
          const bool acc = mode == 1;
          const float* bi = mode == 2 ? bias.data() : nullptr;
          auto C = C0, C1 = C0;
          g.mtPacked(pool, false, s.M, A.data(), s.K, pb, C.data(), s.N, acc, false, bi);
          g1.mtPacked(one, false, s.M, A.data(), s.K, pb1, C1.data(), s.N, acc, false, bi);
          wPacked = std::max(wPacked, worst(C, A, B, acc ? &C0 : nullptr, bi, false, tb, s));
          same = same && !std::memcmp(C.data(), C1.data(), C.size() * sizeof(float));
          if (bi) {  // the contract: bitwise what C = bias; C += product gives
            for (int i = 0; i < s.M; i++) std::memcpy(C1.data() + (size_t)i * s.N, bi, sizeof(float) * s.N);
            g.mtPacked(pool, false, s.M, A.data(), s.K, pb, C1.data(), s.N, true);
            same = same && !std::memcmp(C.data(), C1.data(), C.size() * sizeof(float));
          }
        }
        // One thread's rows from a multiple of 32, as the scoring head takes them.
        const int i0 = s.M > 32 ? 32 : 0;
        PackedA pa;
        g.packRows(A.data(), s.K, s.M, s.K, pa);
        std::vector<float> C((size_t)s.M * s.N, 0.f);
        pool.run([&](int tid) {
          if (tid == 0) g.stPacked(0, pa, i0, s.M, pb, C.data() + (size_t)i0 * s.N, s.N);
        });
        std::vector<float> Cs(C.begin() + (size_t)i0 * s.N, C.end());
        std::vector<float> As(A.begin() + (size_t)i0 * s.K, A.end());
        wPacked = std::max(wPacked, worst(Cs, As, B, nullptr, nullptr, false, tb, {s.M - i0, s.N, s.K}));
        // packOne + stPrefix: the first n columns and k rows of op(B), as attention's query blocks.
        PackedB one1;
        const int n = std::min(s.N, s.N / 2 + 1), k = (s.K + 2) / 3;
        std::vector<float> Cp((size_t)s.M * n), Ap((size_t)s.M * k), Bp((size_t)k * n);
        for (int i = 0; i < s.M; i++)
          for (int p = 0; p < k; p++) Ap[(size_t)i * k + p] = A[(size_t)i * s.K + p];
        for (int p = 0; p < k; p++)
          for (int j = 0; j < n; j++) Bp[(size_t)p * n + j] = tb ? B[(size_t)j * s.K + p] : B[(size_t)p * s.N + j];
        pool.run([&](int tid) {
          if (tid) return;
          g.packOne(tb, s.K, s.N, B.data(), tb ? s.K : s.N, one1);
          g.stPrefix(0, s.M, n, k, A.data(), s.K, one1, Cp.data(), n);
        });
        wPacked = std::max(wPacked, worst(Cp, Ap, Bp, nullptr, nullptr, false, false, {s.M, n, k}));
      }
    }
    const bool good = wMt <= kBound && wSt <= kBound && wPacked <= kBound && same;
    ok = ok && good;
    std::printf("%s gemm: mt %.2e, st %.2e, packed %.2e of sum |a b| (bound %.0e); bitwise on 1 and 3 threads and with a bias %s %s\n",
                name, wMt, wSt, wPacked, kBound, same ? "yes" : "NO", good ? "ok" : "FAIL");
  }
  if (!any) std::printf("no kernel\n");
  return ok && any ? 0 : 1;
}
