// Checks the engine against the PyTorch golden fixture without Node:
//   make -C native harness && native/build-harness/golden_check /work/shared/golden/neox-tiny [threads] [kernel]
// Tolerances as the README of the fixture: logits 1e-4 abs, loss 1e-5, grads 1e-4 of max |expected|.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../src/engine.h"
#include "harness.h"

using namespace cpt;

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/work/shared/golden/neox-tiny";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const char* kernel = argc > 3 ? argv[3] : "auto";
  try {
    const ModelConfig c = readConfig(dir);
    Engine e(c, threads, kernel);
    Safetensors model(dir + "/model.safetensors"), expected(dir + "/expected.safetensors");
    for (const ParamInfo& p : e.params()) {
      auto w = model.read<float>(p.name, "F32");
      if (w.size() != p.size) throw std::runtime_error(p.name + ": size mismatch");
      std::memcpy(e.weights() + p.offset, w.data(), p.size * sizeof(float));
    }
    const auto ids = expected.read<int32_t>("input_ids", "I32");
    const auto wantLogits = expected.read<float>("logits", "F32");
    const double wantLoss = expected.read<float>("loss", "F32")[0];
    int batch = 0, seq = 0;
    idsShape(expected, &batch, &seq);
    bool ok = true;
    std::vector<float> logits(wantLogits.size());
    e.logits(ids.data(), batch, seq, logits.data());
    ok &= compare("logits", logits.data(), wantLogits.data(), logits.size(), 1e-4, false);
    const double loss = e.trainStep(ids.data(), batch, seq, 1.0);
    const bool lossOk = std::fabs(loss - wantLoss) <= 1e-5;
    std::printf("%s loss: %.7f vs %.7f\n", lossOk ? "ok  " : "FAIL", loss, wantLoss);
    ok &= lossOk;
    int nGrad = 0;
    for (const ParamInfo& p : e.params()) {
      auto g = expected.read<float>("grad." + p.name, "F32");
      ok &= compare(("grad." + p.name).c_str(), e.grads() + p.offset, g.data(), p.size, 1e-4, true);
      nGrad++;
    }
    std::printf("%s: kernel=%s threads=%d, logits + loss + %d gradients vs PyTorch golden\n", ok ? "PASS" : "FAIL",
                e.kernelName(), threads, nGrad);
    return ok ? 0 : 1;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "golden_check: %s\n", ex.what());
    return 2;
  }
}
