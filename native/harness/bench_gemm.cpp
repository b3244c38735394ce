// SGEMM throughput for the shapes of Pythia training (no Node needed).
// Usage: bench_gemm [threads] [kernel] [fp32|bf16|amx|avx512bf16]
// Then the products of scoring Pythia-160m against weights packed once.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../src/bf16.h"
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
      {"70m head fwd NT 2048x50304x512", false, true, 2048, 50304, 512},
      {"70m head dH NN 2048x512x50304", false, false, 2048, 512, 50304},
      {"70m head dW TN 50304x512x2048", true, false, 50304, 512, 2048},
      {"70m qkv NT 2048x1536x512", false, true, 2048, 1536, 512},
      {"70m up dX NN 2048x512x2048", false, false, 2048, 512, 2048},
      {"70m dW TN 2048x512x2048", true, false, 2048, 512, 2048},
      {"square NN 1024", false, false, 1024, 1024, 1024},
  };
  const std::string prec = argc > 3 ? argv[3] : "fp32";
  const bool b16 = prec != "fp32";
  const bf16::Path path = b16 ? bf16::select(prec == "bf16" ? "auto" : prec.c_str()) : bf16::Path::none;
  if (b16 && path == bf16::Path::none) { std::fprintf(stderr, "bf16 (%s) unavailable on this CPU\n", prec.c_str()); return 1; }
  Gemm g16(k, threads, path);
  std::printf("kernel=%s threads=%d precision=%s bf16=%s\n", k->name, threads, b16 ? "bf16" : "fp32", bf16::name(path));
  for (const S& s : shapes) {
    const int rowsA = s.ta ? s.K : s.M, colsA = s.ta ? s.M : s.K;
    const int rowsB = s.tb ? s.N : s.K, colsB = s.tb ? s.K : s.N;
    std::vector<float> A((size_t)rowsA * colsA), B((size_t)rowsB * colsB), C((size_t)s.M * s.N), R((size_t)s.M * s.N);
    unsigned seed = 1;
    auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return (float)((seed >> 8) * (1.0 / 16777216.0) - 0.5); };
    for (float& x : A) x = rnd();
    for (float& x : B) x = rnd();
    if (b16) {  // accuracy against the fp32 path (relative to the largest |C|)
      g.mt(pool, s.ta, s.tb, s.M, s.N, s.K, A.data(), colsA, B.data(), colsB, R.data(), s.N, false);
      g16.mt(pool, s.ta, s.tb, s.M, s.N, s.K, A.data(), colsA, B.data(), colsB, C.data(), s.N, false);
      double md = 0, mx = 0;
      for (size_t i = 0; i < C.size(); i++) md = std::max(md, (double)std::fabs(C[i] - R[i])), mx = std::max(mx, (double)std::fabs(R[i]));
      std::printf("%-32s max|bf16-fp32| %.3e of max|C| %.3e (%.2e)\n", s.what, md, mx, md / mx);
    }
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
      auto t0 = std::chrono::steady_clock::now();
      (b16 ? g16 : g).mt(pool, s.ta, s.tb, s.M, s.N, s.K, A.data(), colsA, B.data(), colsB, C.data(), s.N, false);
      double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (dt < best) best = dt;
    }
    std::printf("%-32s %8.2f ms %7.1f GFLOP/s\n", s.what, best * 1e3, 2.0 * s.M * s.N * s.K / best / 1e9);
  }
  // Scoring's products: weights packed once (packAll), 2048 rows of activations against them
  // (mtPacked), on Pythia-160m's shapes; the last line weights them as one forward pass does
  // (twelve layers and the head).
  struct P { const char* what; int M, N, K, perForward; };
  const P packed[] = {{"160m qkv packed 2048x2304x768", 2048, 2304, 768, 12},
                      {"160m out packed 2048x768x768", 2048, 768, 768, 12},
                      {"160m up packed 2048x3072x768", 2048, 3072, 768, 12},
                      {"160m down packed 2048x768x3072", 2048, 768, 3072, 12},
                      {"160m head packed 2048x50304x768", 2048, 50304, 768, 1}};
  double flops = 0, secs = 0;
  for (const P& s : packed) {
    std::vector<float> A((size_t)s.M * s.K), W((size_t)s.N * s.K), C((size_t)s.M * s.N);
    unsigned seed = 2;
    auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return (float)((seed >> 8) * (1.0 / 16777216.0) - 0.5); };
    for (float& x : A) x = rnd();
    for (float& x : W) x = rnd();
    Gemm& gg = b16 ? g16 : g;
    PackedB pb;
    gg.packAll(pool, true, s.K, s.N, W.data(), s.K, pb);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
      auto t0 = std::chrono::steady_clock::now();
      gg.mtPacked(pool, false, s.M, A.data(), s.K, pb, C.data(), s.N, false);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double f = 2.0 * s.M * s.N * s.K;
    flops += f * s.perForward, secs += best * s.perForward;
    std::printf("%-32s %8.2f ms %7.1f GFLOP/s\n", s.what, best * 1e3, f / best / 1e9);
  }
  std::printf("%-32s %8.2f ms %7.1f GFLOP/s\n", "160m forward products (weighted)", secs * 1e3, flops / secs / 1e9);
}
