// SGEMM throughput for the shapes of Pythia training (no Node needed).
// Usage: bench_gemm [threads] [kernel]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../src/gemm.h"

using namespace cpt;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const char* kname = argc > 2 ? argv[2] : "auto";
  const Kernel* k = selectKernel(kname);
  if (!k) { std::fprintf(stderr, "kernel %s unavailable\n", kname); return 1; }
  ThreadPool pool(threads);
  Gemm g(k, threads);
  struct S { const char* what; bool ta, tb; int M, N, K; };
  const S shapes[] = {
      {"lm-head fwd NT 333x50304x128", false, true, 333, 50304, 128},
      {"lm-head dH NN 333x128x50304", false, false, 333, 128, 50304},
      {"lm-head dW TN 50304x128x333", true, false, 50304, 128, 333},
      {"70m qkv NT 2048x1536x512", false, true, 2048, 1536, 512},
      {"70m up dX NN 2048x512x2048", false, false, 2048, 512, 2048},
      {"70m dW TN 2048x512x2048", true, false, 2048, 512, 2048},
      {"square NN 1024", false, false, 1024, 1024, 1024},
  };
  std::printf("kernel=%s threads=%d\n", k->name, threads);
  for (const S& s : shapes) {
    const int rowsA = s.ta ? s.K : s.M, colsA = s.ta ? s.M : s.K;
    const int rowsB = s.tb ? s.N : s.K, colsB = s.tb ? s.K : s.N;
    std::vector<float> A((size_t)rowsA * colsA, 0.5f), B((size_t)rowsB * colsB, 0.25f), C((size_t)s.M * s.N);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
      auto t0 = std::chrono::steady_clock::now();
      g.mt(pool, s.ta, s.tb, s.M, s.N, s.K, A.data(), colsA, B.data(), colsB, C.data(), s.N, false);
      double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (dt < best) best = dt;
    }
    std::printf("%-32s %8.2f ms %7.1f GFLOP/s\n", s.what, best * 1e3, 2.0 * s.M * s.N * s.K / best / 1e9);
  }
}
