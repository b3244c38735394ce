// What the standalone harnesses share (no Node, no JSON library): a minimal safetensors reader
// (the header is JSON; only dtype, shape and data_offsets by name are needed), numbers and flags
// from config.json, and the tolerance check that prints the max difference.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../src/model.h"

namespace cpt {

inline std::string readAll(const std::string& path) {
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

inline double jsonNumber(const std::string& js, const char* key) {
  const size_t at = js.find(std::string("\"") + key + "\"");
  if (at == std::string::npos) throw std::runtime_error(std::string("config.json lacks ") + key);
  return std::strtod(js.c_str() + js.find(':', at) + 1, nullptr);
}
inline bool jsonBool(const std::string& js, const char* key) {
  const size_t at = js.find(std::string("\"") + key + "\"");
  if (at == std::string::npos) return false;
  return js.compare(js.find_first_not_of(" :", js.find(':', at)), 4, "true") == 0;
}

// A Pythia shape for the benchmarks and checks (14m, 70m, 160m, 410m, 1b): 4h MLP, vocab 50304.
inline ModelConfig pythiaShape(const std::string& name) {
  ModelConfig c;
  if (name == "14m") c.hidden = 128, c.layers = 6, c.heads = 4;
  else if (name == "70m") c.hidden = 512, c.layers = 6, c.heads = 8;
  else if (name == "160m") c.hidden = 768, c.layers = 12, c.heads = 12;
  else if (name == "410m") c.hidden = 1024, c.layers = 24, c.heads = 16;
  else if (name == "1b") c.hidden = 2048, c.layers = 16, c.heads = 8;
  else throw std::runtime_error("unknown shape " + name + " (14m, 70m, 160m, 410m, 1b)");
  c.inter = 4 * c.hidden, c.vocab = 50304;
  return c;
}

// The model configuration from an HF config.json.
inline ModelConfig readConfig(const std::string& dir) {
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
  return c;
}

// Shape [batch, seq] of input_ids in a golden expected.safetensors.
inline void idsShape(const Safetensors& s, int* batch, int* seq) {
  const size_t at = s.header.find("\"input_ids\"");
  *batch = *seq = 0;
  std::sscanf(s.header.c_str() + s.header.find("\"shape\"", at), "\"shape\":[%d,%d]", batch, seq);
  if (*batch <= 0 || *seq <= 0) throw std::runtime_error("cannot read the shape of input_ids");
}

// max |a - b| <= atol (or atol * max |b| when relMax); prints a line on failure, or always when
// VERBOSE is set.
inline bool compare(const char* what, const float* a, const float* b, size_t n, double atol, bool relMax) {
  double maxAbs = 0, maxDiff = 0;
  for (size_t i = 0; i < n; i++) maxAbs = std::max(maxAbs, (double)std::fabs(b[i]));
  for (size_t i = 0; i < n; i++) {  // a NaN counts as infinitely far (std::max alone would pass it over)
    const double d = std::fabs((double)a[i] - b[i]);
    maxDiff = std::max(maxDiff, std::isnan(d) ? INFINITY : d);
  }
  const double tol = relMax ? atol * maxAbs : atol;
  const bool ok = maxDiff <= tol;
  if (!ok || std::getenv("VERBOSE")) std::printf("%s %s: max|diff| %.3e (tol %.3e)\n", ok ? "ok  " : "FAIL", what, maxDiff, tol);
  return ok;
}

}  // namespace cpt
