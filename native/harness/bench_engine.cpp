// Training and scoring throughput of the engine on a Pythia shape (no Node needed).
// Usage: bench_engine [14m|70m|160m] [threads] [kernel] [steps] [batch] [seq] [fp32|bf16|amx|avx512bf16]
//                     [both|score] (score: no training steps in the loop, for profiling scoring alone)
// Prints one name=value line per figure.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <ctime>

#include "../src/engine.h"
#include "harness.h"

using namespace cpt;
using Clock = std::chrono::steady_clock;
static double cpuNow() {  // process CPU seconds: a load-robust view when the machine is shared
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const char* shape = argc > 1 ? argv[1] : "14m";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const char* kernel = argc > 3 ? argv[3] : "auto";
  const int steps = argc > 4 ? std::atoi(argv[4]) : 3;
  const int B = argc > 5 ? std::atoi(argv[5]) : 4, T = argc > 6 ? std::atoi(argv[6]) : 512;
  ModelConfig c;
  try {
    c = pythiaShape(shape);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  const char* prec = argc > 7 ? argv[7] : "fp32";  // bf16 = the best bf16 path
  const bool train = !(argc > 8 && !std::strcmp(argv[8], "score"));
  Engine e(c, threads, kernel, !std::strcmp(prec, "fp32") ? nullptr : !std::strcmp(prec, "bf16") ? "auto" : prec);
  std::fprintf(stderr, "precision=%s bf16=%s\n", e.precision(), e.bf16Kernel());
  std::mt19937 rng(0);
  std::normal_distribution<float> nd(0.f, 0.02f);
  for (const ParamInfo& p : e.params()) {
    float* w = e.weights() + p.offset;
    const bool ln = p.name.find("layernorm") != std::string::npos;
    const bool bias = p.name.find(".bias") != std::string::npos;
    for (size_t i = 0; i < p.size; i++) w[i] = bias ? 0.f : ln ? 1.f : nd(rng);
  }
  std::vector<int32_t> ids((size_t)B * T);
  for (auto& t : ids) t = (int32_t)(rng() % c.vocab);
  AdamW o{1e-4, 0.9, 0.95, 1e-8, 0.1, 1.0};
  e.trainStep(ids.data(), B, T, 1.0);
  e.applyAdamW(o);
  double bestTrain = 1e30, bestScore = 1e30, cpuTrain = 1e30, cpuScore = 1e30;
  std::vector<float> lp((size_t)B * (T - 1));
  for (int s = 0; s < steps; s++) {
    const double c0 = cpuNow();
    auto t0 = Clock::now();
    if (train) {
      e.trainStep(ids.data(), B, T, 1.0);
      e.applyAdamW(o);
    }
    auto t1 = Clock::now();
    const double c1 = cpuNow();
    e.tokenLogprobs(ids.data(), B, T, lp.data());
    auto t2 = Clock::now();
    const double c2 = cpuNow();
    cpuTrain = std::min(cpuTrain, c1 - c0), cpuScore = std::min(cpuScore, c2 - c1);
    bestTrain = std::min(bestTrain, std::chrono::duration<double>(t1 - t0).count());
    bestScore = std::min(bestScore, std::chrono::duration<double>(t2 - t1).count());
  }
  std::printf("shape=%s kernel=%s threads=%d B=%d T=%d params=%zu\n", shape, e.kernelName(), threads, B, T,
              e.totalParams());
  if (train) std::printf("train_tok_s=%.0f\ntrain_tok_per_cpu_s=%.0f\n", B * T / bestTrain, B * T / cpuTrain);
  std::printf("score_tok_s=%.0f\nscore_tok_per_cpu_s=%.0f\n", B * T / bestScore, B * T / cpuScore);
}
