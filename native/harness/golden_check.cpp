// Checks the engine against the PyTorch golden fixture without Node:
//   make -C native harness && native/build-harness/golden_check /work/shared/golden/neox-tiny [threads] [kernel]
// Tolerances as the README of the fixture: logits 1e-4 abs, loss 1e-5, grads 1e-4 of max |expected|.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../src/engine.h"

using namespace cpt;

static std::string readAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Minimal safetensors reader: the header is JSON; we only need dtype and data_offsets by name.
struct Safetensors {
  std::string blob, header;
  size_t dataStart = 0;
  explicit Safetensors(const std::string& path) : blob(readAll(path)) {
    uint64_t n;
    std::memcpy(&n, blob.data(), 8);
    header = blob.substr(8, n);
    dataStart = 8 + n;
  }
  template <class T>
  std::vector<T> read(const std::string& name, const char* dtype) const {
    const size_t at = header.find("\"" + name + "\"");
    if (at == std::string::npos) throw std::runtime_error("tensor " + name + " not found");
    const size_t end = header.find('}', at);
    const std::string entry = header.substr(at, end - at);
    if (entry.find(std::string("\"") + dtype + "\"") == std::string::npos)
      throw std::runtime_error("tensor " + name + " is not " + dtype);
    const size_t o = entry.find("data_offsets");
    size_t a = 0, b = 0;
    std::sscanf(entry.c_str() + entry.find('[', o), "[%zu,%zu]", &a, &b);
    std::vector<T> v((b - a) / sizeof(T));
    std::memcpy(v.data(), blob.data() + dataStart + a, b - a);
    return v;
  }
};

static double jsonNumber(const std::string& js, const char* key) {
  const size_t at = js.find(std::string("\"") + key + "\"");
  if (at == std::string::npos) throw std::runtime_error(std::string("config.json lacks ") + key);
  return std::strtod(js.c_str() + js.find(':', at) + 1, nullptr);
}
static bool jsonBool(const std::string& js, const char* key) {
  const size_t at = js.find(std::string("\"") + key + "\"");
  if (at == std::string::npos) return false;
  return js.compare(js.find_first_not_of(" :", js.find(':', at)), 4, "true") == 0;
}

static bool compare(const char* what, const float* a, const float* b, size_t n, double atol, bool relMax) {
  double maxAbs = 0, maxDiff = 0;
  for (size_t i = 0; i < n; i++) maxAbs = std::max(maxAbs, (double)std::fabs(b[i]));
  for (size_t i = 0; i < n; i++) maxDiff = std::max(maxDiff, (double)std::fabs(a[i] - b[i]));
  const double tol = relMax ? atol * maxAbs : atol;
  const bool ok = maxDiff <= tol;
  if (!ok || std::getenv("VERBOSE")) std::printf("%s %s: max|diff| %.3e (tol %.3e)\n", ok ? "ok  " : "FAIL", what, maxDiff, tol);
  return ok;
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/work/shared/golden/neox-tiny";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const char* kernel = argc > 3 ? argv[3] : "auto";
  try {
    const std::string js = readAll(dir + "/config.json");
    ModelConfig c;
    c.hidden = (int)jsonNumber(js, "hidden_size");
    c.layers = (int)jsonNumber(js, "num_hidden_layers");
    c.heads = (int)jsonNumber(js, "num_attention_heads");
    c.inter = (int)jsonNumber(js, "intermediate_size");
    c.vocab = (int)jsonNumber(js, "vocab_size");
    c.rotaryPct = jsonNumber(js, "rotary_pct");
    c.rotaryBase = jsonNumber(js, "rotary_emb_base");
    c.lnEps = jsonNumber(js, "layer_norm_eps");
    c.exactGelu = js.find("\"hidden_act\": \"gelu\"") != std::string::npos || js.find("\"hidden_act\":\"gelu\"") != std::string::npos;
    c.parallelResidual = jsonBool(js, "use_parallel_residual");
    c.tied = jsonBool(js, "tie_word_embeddings");
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
    int batch = 0, seq = 0;  // input_ids shape [batch, seq]
    {
      const size_t at = expected.header.find("\"input_ids\"");
      std::sscanf(expected.header.c_str() + expected.header.find("\"shape\"", at), "\"shape\":[%d,%d]", &batch, &seq);
      if (batch <= 0 || seq <= 0) throw std::runtime_error("cannot read the shape of input_ids");
    }
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
