// GPU checks of the CUDA engine without Node (GPU machines may have none): run by
// native/cuda/verify.sh. Every check prints name=value lines; the exit status is 0 only when
// every check passed.
//   cuda_check probe                       the device, driver, runtime and cuBLASLt (exit 1: no device)
//   cuda_check golden DIR                  fp32 and bf16 against the PyTorch golden fixture
//   cuda_check parity [T] [steps]          against the CPU engine on random configs (sequences of T,
//                                          default 150), the device-side sort, clipping and skip;
//                                          determinism over `steps` AdamW steps (5); CUDA graphs
//   cuda_check flash [T]                   the fused attention (bf16, mma.sync tiles) against the
//                                          unfused path and the CPU engine, per head dimension
//                                          (default T 150)
//   cuda_check reference TOKENS OUT [steps] [B] [T] [threads]
//                                          the CPU engine's fp32 loss curve of the run below, to
//                                          a file (computed where the CPUs are, and carried)
//   cuda_check train TOKENS REF [steps] [B] [T]
//                                          pythia-160m shape on kit tokens (uint16 file): CUDA fp32
//                                          and bf16 loss curves against the carried CPU curve
//   cuda_check bench SHAPE [B] [T] [steps] [recompute] [MODEL_TSV]
//                                          bf16 training tokens/s and MFU (SHAPE 14m..1b), then
//                                          the per-kernel time of a step beside the model's
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <dlfcn.h>

#include "../../harness/harness.h"
#include "../../src/engine.h"
#include "../cpt_cuda.h"

using namespace cpt;

namespace {

void need(int rc) {
  if (rc != 0) throw std::runtime_error(cpt_cuda_error());
}

// The C API as a class with the CPU engine's shape.
class Gpu {
 public:
  Gpu(const ModelConfig& m, bool bf16, bool recompute = false) {
    CptCudaConfig c{m.hidden, m.layers, m.heads, m.inter, m.vocab, m.rotaryPct, m.rotaryBase, m.lnEps,
                    m.exactGelu, m.parallelResidual, m.tied};
    CptCudaOptions o{bf16 ? 1 : 0, recompute ? 1 : 0, 0};
    e_ = cpt_cuda_create(&c, &o);
    if (!e_) throw std::runtime_error(cpt_cuda_error());
  }
  ~Gpu() { cpt_cuda_destroy(e_); }
  int n() const { return cpt_cuda_num_params(e_); }
  void set(int which, int i, const float* p) { need(cpt_cuda_set_tensor(e_, which, i, p)); }
  std::vector<float> get(int which, int i) {
    std::vector<float> v(cpt_cuda_param_size(e_, i));
    need(cpt_cuda_get_tensor(e_, which, i, v.data()));
    return v;
  }
  std::vector<float> logits(const std::vector<int32_t>& ids, int B, int T, int V) {
    std::vector<float> out((size_t)B * T * V);
    need(cpt_cuda_logits(e_, ids.data(), B, T, out.data()));
    return out;
  }
  double train(const std::vector<int32_t>& ids, int B, int T, double scale = 1) {
    double l;
    need(cpt_cuda_train_step(e_, ids.data(), B, T, scale, &l));
    return l;
  }
  double eval(const std::vector<int32_t>& ids, int B, int T) {
    double l;
    need(cpt_cuda_eval_loss(e_, ids.data(), B, T, &l));
    return l;
  }
  std::vector<float> logprobs(const std::vector<int32_t>& ids, int B, int T) {
    std::vector<float> out((size_t)B * (T - 1));
    need(cpt_cuda_token_logprobs(e_, ids.data(), B, T, out.data()));
    return out;
  }
  std::vector<float> meanHidden(const std::vector<int32_t>& ids, int B, int T, const std::vector<int32_t>& len, int D) {
    std::vector<float> out((size_t)B * D);
    need(cpt_cuda_mean_hidden(e_, ids.data(), B, T, len.data(), out.data()));
    return out;
  }
  double adamw(const AdamW& a) {
    double n;
    need(cpt_cuda_adamw(e_, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.clip, &n));
    return n;
  }
  const char* device() const { return cpt_cuda_device_name(e_); }
  int64_t step() const { return cpt_cuda_get_step(e_); }

 private:
  CptCudaEngine* e_;
};

const AdamW kAdam{6e-4, 0.9, 0.95, 1e-8, 0.1, 1.0};

// Seeded Pythia-like init shared by both engines: matrices of std 0.02, norms near 1, small
// biases. Counter-based (a hash of seed, tensor and index, uniform with the std of N(0, 0.02)):
// a 1b model fills in about a second, and any element is the same whatever the fill order.
float hashUniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);  // [-1, 1)
}
std::vector<std::vector<float>> initWeights(const ModelConfig& c, unsigned seed) {
  size_t total;
  const auto ps = paramTable(c, &total);
  const float a = 0.02f * std::sqrt(3.f);  // uniform(-a, a) has std 0.02
  std::vector<std::vector<float>> w;
  for (size_t k = 0; k < ps.size(); k++) {
    const ParamInfo& p = ps[k];
    const bool ln = p.name.find("layernorm") != std::string::npos;
    const bool bias = p.name.find(".bias") != std::string::npos;
    std::vector<float> t(p.size);
    const uint64_t s = (uint64_t)seed << 32 | k;
    for (size_t i = 0; i < t.size(); i++) {
      const float x = a * hashUniform(s, i);
      t[i] = bias ? 0.01f * x : ln ? 1.f + x : x;
    }
    w.push_back(std::move(t));
  }
  return w;
}

void loadBoth(Engine* cpu, Gpu* gpu, const std::vector<std::vector<float>>& w) {
  for (size_t i = 0; i < w.size(); i++) {
    if (cpu) std::memcpy(cpu->weights() + cpu->params()[i].offset, w[i].data(), w[i].size() * sizeof(float));
    if (gpu) gpu->set(0, (int)i, w[i].data());
  }
}

std::vector<int32_t> randomIds(int n, int V, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& x : ids) x = (int32_t)(rng() % V);
  return ids;
}

// Every gradient, or both AdamW moments, of the CUDA engine against the CPU engine's (1e-4 of
// each tensor's largest).
bool gradsClose(Gpu& gpu, Engine& cpu, const std::string& prefix) {
  bool ok = true;
  for (int i = 0; i < gpu.n(); i++)
    ok &= compare((prefix + "grad." + cpu.params()[i].name).c_str(), gpu.get(1, i).data(), cpu.grads() + cpu.params()[i].offset,
                  cpu.params()[i].size, 1e-4, true);
  return ok;
}
bool momentsClose(Gpu& gpu, Engine& cpu) {
  bool ok = true;
  for (int i = 0; i < gpu.n(); i++) {
    const ParamInfo& p = cpu.params()[i];
    ok &= compare(("adam.m." + p.name).c_str(), gpu.get(2, i).data(), cpu.moment1() + p.offset, p.size, 1e-4, true);
    ok &= compare(("adam.v." + p.name).c_str(), gpu.get(3, i).data(), cpu.moment2() + p.offset, p.size, 1e-4, true);
  }
  return ok;
}

bool lossClose(const char* what, double a, double b, double tol) {
  const bool ok = std::fabs(a - b) <= tol;
  if (!ok || std::getenv("VERBOSE")) std::printf("%s %s: %.7f vs %.7f (tol %.1e)\n", ok ? "ok  " : "FAIL", what, a, b, tol);
  return ok;
}

// ---- golden: the PyTorch fixture, fp32 at the CPU engine's tolerances, bf16 at its bf16 ones.
int golden(const std::string& dir) {
  const ModelConfig c = readConfig(dir);
  Safetensors model(dir + "/model.safetensors"), expected(dir + "/expected.safetensors");
  int B, T;
  idsShape(expected, &B, &T);
  const auto ids = expected.read<int32_t>("input_ids", "I32");
  const auto want = expected.read<float>("logits", "F32");
  const double wantLoss = expected.read<float>("loss", "F32")[0];
  size_t total;
  const auto ps = paramTable(c, &total);
  bool all = true;
  for (int bf16 = 0; bf16 < 2; bf16++) {
    Gpu g(c, bf16);
    for (size_t i = 0; i < ps.size(); i++) g.set(0, (int)i, model.read<float>(ps[i].name, "F32").data());
    // fp32: the fixture's own tolerances; bf16: those of test/native/bf16.test.ts.
    const double lt = bf16 ? 2e-2 : 1e-4, gt = bf16 ? 4e-2 : 1e-4;
    double maxLogit = 0;
    for (float x : want) maxLogit = std::max(maxLogit, (double)std::fabs(x));
    bool ok = compare("logits", g.logits(ids, B, T, c.vocab).data(), want.data(), want.size(), bf16 ? lt * maxLogit : lt, false);
    const double loss = g.train(ids, B, T);
    ok &= lossClose("loss", loss, wantLoss, bf16 ? 5e-3 * wantLoss : 1e-5);
    for (size_t i = 0; i < ps.size(); i++) {
      const auto e = expected.read<float>("grad." + ps[i].name, "F32");
      ok &= compare(("grad." + ps[i].name).c_str(), g.get(1, (int)i).data(), e.data(), e.size(), gt, true);
    }
    std::printf("golden_%s=%s\n", bf16 ? "bf16" : "fp32", ok ? "pass" : "FAIL");
    if (!bf16) std::printf("device=%s\n", g.device());
    all &= ok;
  }
  return all ? 0 : 1;
}

// ---- parity: CUDA fp32 against the CPU engine on configs that cover every code path.
struct Case {
  const char* name;
  bool parallel, tied, exact;
  double rotary;
  int hidden = 64, heads = 4, inter = 256, vocab = 1000;
};

// What stays on the device between the host's calls: the embedding gradient's sort with three
// digit passes (a vocabulary past 2^16), the clip coefficient from the device's norm (clipping
// and not), and a gradient that is not finite (nothing updated, the accumulators zeroed).
bool onDevice(int T) {
  ModelConfig c;
  c.hidden = 16, c.layers = 1, c.heads = 2, c.inter = 32, c.vocab = 70000;
  const int B = 2;
  const auto w = initWeights(c, 5);
  Engine cpu(c, 4, "auto");
  Gpu gpu(c, false);
  loadBoth(&cpu, &gpu, w);
  auto ids = randomIds(B * T, c.vocab, 21);
  for (int i = 0; i < B * T; i += 3) ids[i] = i % 2 ? c.vocab - 1 : 65536;  // runs across every digit pass
  gpu.train(ids, B, T), cpu.trainStep(ids.data(), B, T, 1.0);
  const bool sorted = gradsClose(gpu, cpu, "passes3.");
  std::printf("embedding_3_passes=%s\n", sorted ? "pass" : "FAIL");
  // Clipping at 1e-3 (the coefficient far below 1), then none.
  bool clip = true;
  for (double at : {1e-3, 0.0}) {
    AdamW a = kAdam;
    a.clip = at;
    clip &= lossClose("gradNorm", gpu.adamw(a), cpu.applyAdamW(a), 1e-4);
    clip &= momentsClose(gpu, cpu);
    gpu.train(ids, B, T), cpu.trainStep(ids.data(), B, T, 1.0);
  }
  std::printf("adamw_clip=%s\n", clip ? "pass" : "FAIL");
  // One NaN in the gradient: the norm comes back NaN and only the accumulators change (to zero).
  std::vector<std::vector<float>> before[3];
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < gpu.n(); i++) before[s].push_back(gpu.get(s == 0 ? 0 : s + 1, i));
  auto g = gpu.get(1, 1);
  g[g.size() / 2] = std::nanf("");
  gpu.set(1, 1, g.data());
  const int64_t step = gpu.step();
  bool skip = std::isnan(gpu.adamw(kAdam)) && gpu.step() == step;
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < gpu.n(); i++) skip &= gpu.get(s == 0 ? 0 : s + 1, i) == before[s][i];
  for (int i = 0; i < gpu.n(); i++)
    for (float x : gpu.get(1, i)) skip &= x == 0.f;
  std::printf("adamw_nonfinite=%s\n", skip ? "pass" : "FAIL");
  return sorted && clip && skip;
}

// CUDA graphs (the default; CPT_CUDA_GRAPHS=0 runs eagerly): steps of one shape, another shape
// between them (its buffers replace those the graph names) and back, then steps of two
// accumulated micro-batches (one writes the gradient, one adds to it: a graph each), with AdamW
// after each step, end bitwise where the eager engine ends. On the simulator, the graph launches
// are counted: captured on a kind of step's second call, replayed after, dropped when the shape
// changes.
bool graphs(const ModelConfig& c, const std::vector<std::vector<float>>& w, bool bf16, int T) {
  const int B = 3, h = T / 2, shapes[] = {h, h, h, h / 2, h, h, -h, -h, -h};  // -h: two micro-batches of h
  using Count = long long (*)();
  const auto count = (Count)dlsym(RTLD_DEFAULT, "cpt_sim_graph_launches");  // the simulator's (other engines' too)
  const long long before = count ? count() : 0;
  std::vector<std::vector<float>> runs[2];
  for (int on = 0; on < 2; on++) {
    setenv("CPT_CUDA_GRAPHS", on ? "1" : "0", 1);
    Gpu g(c, bf16);
    unsetenv("CPT_CUDA_GRAPHS");
    loadBoth(nullptr, &g, w);
    int s = 0;
    for (int t : shapes) {
      for (int m = 0; m < (t < 0 ? 2 : 1); m++) g.train(randomIds(B * std::abs(t), c.vocab, 200 + s++), B, std::abs(t), t < 0 ? 0.5 : 1.0);
      g.adamw(kAdam);
    }
    for (int i = 0; i < g.n(); i++) runs[on].push_back(g.get(0, i));
  }
  bool ok = runs[0] == runs[1];
  if (count) {
    const long long n = count() - before;
    std::printf("graph_launches_%s=%lld\n", bf16 ? "bf16" : "fp32", n);
    ok &= n == 7;  // steps 2-3 of the first shape, then 6 (step 5 warms it again), then both micro-batches of steps 8-9
  }
  std::printf("graphs_bitwise_%s=%s\n", bf16 ? "bf16" : "fp32", ok ? "pass" : "FAIL");
  return ok;
}

int parity(int T, int steps) {
  const Case cases[] = {{"parallel-r0.25-untied", true, false, true, 0.25},
                        {"sequential-r0.5-tied-tanh", false, true, false, 0.5},
                        {"parallel-r0-untied", true, false, true, 0.0},
                        {"sequential-r1-untied", false, false, true, 1.0},
                        // Widths that are not multiples of 4: the element-wise kernels' one-by-one
                        // paths and AdamW chunks with ragged ends.
                        {"ragged-d34-i70-v999", true, false, true, 0.25, 34, 2, 70, 999}};
  // Several attention row blocks and LM-head chunks, with ragged ends (unless the caller chose).
  setenv("CPT_CUDA_ATTN_ROWS", "64", 0);
  setenv("CPT_CUDA_HEAD_ROWS", "100", 0);
  const int B = 3;
  bool all = true;
  for (const Case& k : cases) {
    ModelConfig c;
    c.hidden = k.hidden, c.layers = 2, c.heads = k.heads, c.inter = k.inter, c.vocab = k.vocab;
    c.parallelResidual = k.parallel, c.tied = k.tied, c.exactGelu = k.exact, c.rotaryPct = k.rotary;
    const auto w = initWeights(c, 7);
    Engine cpu(c, 4, "auto");
    Gpu gpu(c, false);
    loadBoth(&cpu, &gpu, w);
    const auto ids = randomIds(B * T, c.vocab, 11);
    bool ok = true;
    std::vector<float> lc((size_t)B * T * c.vocab);
    cpu.logits(ids.data(), B, T, lc.data());
    ok &= compare("logits", gpu.logits(ids, B, T, c.vocab).data(), lc.data(), lc.size(), 1e-4, false);
    std::vector<float> pc((size_t)B * (T - 1));
    cpu.tokenLogprobs(ids.data(), B, T, pc.data());
    ok &= compare("logprobs", gpu.logprobs(ids, B, T).data(), pc.data(), pc.size(), 1e-4, false);
    const std::vector<int32_t> len{T, 1, T / 2 + 2};
    std::vector<float> hc((size_t)B * c.hidden);
    cpu.meanHidden(ids.data(), B, T, len.data(), hc.data());
    ok &= compare("meanHidden", gpu.meanHidden(ids, B, T, len, c.hidden).data(), hc.data(), hc.size(), 1e-5, false);
    ok &= lossClose("evalLoss", gpu.eval(ids, B, T), cpu.evalLoss(ids.data(), B, T), 1e-5);
    // Two accumulated micro-batches, then one AdamW step.
    const auto ids2 = randomIds(B * T, c.vocab, 12);
    ok &= lossClose("loss", gpu.train(ids, B, T, 0.5), cpu.trainStep(ids.data(), B, T, 0.5), 1e-5);
    gpu.train(ids2, B, T, 0.5), cpu.trainStep(ids2.data(), B, T, 0.5);
    ok &= gradsClose(gpu, cpu, "");
    ok &= lossClose("gradNorm", gpu.adamw(kAdam), cpu.applyAdamW(kAdam), 1e-4);
    ok &= momentsClose(gpu, cpu);  // linear in the gradients: the gradients' tolerance
    // The weights: Adam's m / sqrt(v) turns a near-zero gradient's rounding into up to 2 lr of difference, so all
    // within 2.5 lr and 99.9% within 1e-6.
    size_t far = 0, total = 0;
    for (int i = 0; i < gpu.n(); i++) {
      const ParamInfo& p = cpu.params()[i];
      const auto w = gpu.get(0, i);
      ok &= compare(("adamw." + p.name).c_str(), w.data(), cpu.weights() + p.offset, p.size, 2.5 * kAdam.lr, false);
      for (size_t j = 0; j < p.size; j++) far += std::fabs(w[j] - cpu.weights()[p.offset + j]) > 1e-6;
      total += p.size;
    }
    if (far > total / 1000) {
      std::printf("FAIL adamw: %zu of %zu weights differ by more than 1e-6\n", far, total);
      ok = false;
    }
    std::printf("parity_%s=%s\n", k.name, ok ? "pass" : "FAIL");
    all &= ok;
  }
  all &= onDevice(T);
  // Determinism: the same steps twice give bitwise the same weights (fp32 and bf16), and
  // recomputing activations in backward changes no bit.
  ModelConfig c;
  c.hidden = 64, c.layers = 2, c.heads = 4, c.inter = 256, c.vocab = 1000;
  const auto w = initWeights(c, 3);
  for (int bf16 = 0; bf16 < 2; bf16++) {
    std::vector<std::vector<float>> runs[3];
    for (int r = 0; r < 3; r++) {
      Gpu g(c, bf16, r == 2);
      loadBoth(nullptr, &g, w);
      for (int s = 0; s < steps; s++) {
        g.train(randomIds(B * T, c.vocab, 100 + s), B, T);
        g.adamw(kAdam);
      }
      for (int i = 0; i < g.n(); i++) runs[r].push_back(g.get(0, i));
    }
    const bool same = runs[0] == runs[1], rec = runs[0] == runs[2];
    std::printf("deterministic_%s=%s\nrecompute_bitwise_%s=%s\n", bf16 ? "bf16" : "fp32", same ? "pass" : "FAIL",
                bf16 ? "bf16" : "fp32", rec ? "pass" : "FAIL");
    all &= same && rec;
    all &= graphs(c, w, bf16, T);
  }
  return all ? 0 : 1;
}

// ---- train: 200 steps of a pythia-160m shape on real tokens, CPU fp32 vs CUDA fp32 and bf16.
std::vector<double> curve(const ModelConfig& c, const std::vector<std::vector<float>>& w,
                          const std::vector<uint16_t>& toks, int steps, int B, int T, int mode, int threads,
                          double* seconds) {
  std::unique_ptr<Engine> cpu;
  std::unique_ptr<Gpu> gpu;
  if (mode == 0) cpu = std::make_unique<Engine>(c, threads, "auto");
  else gpu = std::make_unique<Gpu>(c, mode == 2);
  loadBoth(cpu.get(), gpu.get(), w);
  std::vector<double> losses;
  std::vector<int32_t> ids((size_t)B * T);
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; s++) {
    for (size_t i = 0; i < ids.size(); i++) ids[i] = toks[((size_t)s * ids.size() + i) % toks.size()];
    AdamW a = kAdam;
    a.lr = kAdam.lr * std::min(1.0, (s + 1) / 20.0);  // 20 warm-up steps, then constant
    if (cpu) {
      losses.push_back(cpu->trainStep(ids.data(), B, T, 1.0));
      cpu->applyAdamW(a);
    } else {
      losses.push_back(gpu->train(ids, B, T));
      gpu->adamw(a);
    }
  }
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return losses;
}

std::vector<uint16_t> readTokens(const std::string& file, int B, int T, const ModelConfig& c) {
  const std::string blob = readAll(file);
  std::vector<uint16_t> toks(blob.size() / 2);
  std::memcpy(toks.data(), blob.data(), toks.size() * 2);
  if (toks.size() < (size_t)B * T) throw std::runtime_error(file + ": too few tokens");
  for (uint16_t t : toks)
    if (t >= c.vocab) throw std::runtime_error(file + ": token id outside the 160m vocabulary");
  return toks;
}

// The CPU engine's fp32 curve of `train`, one loss per line: slow where CPUs are few, so it is
// computed before a GPU is held (npm run cuda:bundle) and carried.
int reference(const std::string& file, const std::string& out, int steps, int B, int T, int threads) {
  const ModelConfig c = pythiaShape("160m");
  const auto toks = readTokens(file, B, T, c);
  double sec;
  const auto lc = curve(c, initWeights(c, 1), toks, steps, B, T, 0, threads, &sec);
  std::FILE* f = std::fopen(out.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + out);
  std::fprintf(f, "# cuda_check reference %d %d %d\n", steps, B, T);
  for (double l : lc) std::fprintf(f, "%.9g\n", l);
  std::fclose(f);
  std::printf("reference_steps=%d\nreference_seconds_cpu=%.1f\n", steps, sec);
  return 0;
}

int train(const std::string& file, const std::string& ref, int steps, int B, int T) {
  const ModelConfig c = pythiaShape("160m");
  const auto toks = readTokens(file, B, T, c);
  std::vector<double> lc;
  {
    std::istringstream in(readAll(ref));
    std::string line;
    int rs = 0, rb = 0, rt = 0;
    std::getline(in, line);
    if (std::sscanf(line.c_str(), "# cuda_check reference %d %d %d", &rs, &rb, &rt) != 3 || rs < steps || rb != B || rt != T)
      throw std::runtime_error(ref + " is not a reference of " + std::to_string(steps) + " steps of " + std::to_string(B) +
                               " x " + std::to_string(T) + " (make it with: cuda_check reference)");
    while (std::getline(in, line)) lc.push_back(std::strtod(line.c_str(), nullptr));
  }
  const auto w = initWeights(c, 1);
  double tf, tb;
  const auto lf = curve(c, w, toks, steps, B, T, 1, 1, &tf);
  const auto lb = curve(c, w, toks, steps, B, T, 2, 1, &tb);
  double df = 0, db = 0;
  for (int s = 0; s < steps; s++) df = std::max(df, std::fabs(lf[s] - lc[s])), db = std::max(db, std::fabs(lb[s] - lc[s]));
  for (int s : {0, steps / 4, steps / 2, 3 * steps / 4, steps - 1})
    std::printf("train_step%d_loss cpu=%.4f cuda_fp32=%.4f cuda_bf16=%.4f\n", s + 1, lc[s], lf[s], lb[s]);
  std::printf("train_steps=%d\ntrain_tokens_per_step=%d\n", steps, B * T);
  std::printf("train_first_loss_cpu=%.4f\ntrain_final_loss_cpu=%.4f\ntrain_final_loss_cuda_fp32=%.4f\n", lc[0],
              lc[steps - 1], lf.back());
  std::printf("train_final_loss_cuda_bf16=%.4f\ntrain_max_abs_diff_fp32=%.4f\ntrain_max_abs_diff_bf16=%.4f\n", lb.back(),
              df, db);
  std::printf("train_seconds_cuda_fp32=%.1f\ntrain_seconds_cuda_bf16=%.1f\n", tf, tb);
  // The curves must fall and agree: fp32 within 2% of the CPU's final loss, bf16 within 3%.
  const double fin = lc[steps - 1], tolF = 0.02 * fin, tolB = 0.03 * fin;
  std::printf("train_margin_fp32=%.4f of %.4f\ntrain_margin_bf16=%.4f of %.4f\n", std::fabs(lf.back() - fin), tolF,
              std::fabs(lb.back() - fin), tolB);
  const bool ok = fin < lc[0] - 1.0 && std::fabs(lf.back() - fin) <= tolF && std::fabs(lb.back() - fin) <= tolB;
  std::printf("train_curve=%s\n", ok ? "pass" : "FAIL");
  return ok ? 0 : 1;
}

// ---- flash: the fused attention (bf16, on mma.sync tiles: CPT_CUDA_ATTENTION=mma) against the
// unfused bf16 path, both measured against the CPU engine (fp32), for every head dimension it has
// kernels for, at a length T with a ragged last block: the fused path may not be less accurate
// than the unfused one (1.5x, or within a floor of bf16 rounding) and must be bitwise deterministic.
double relErr(const std::vector<float>& a, const float* b) {
  double mx = 0, d = 0;
  for (size_t i = 0; i < a.size(); i++) {  // a NaN counts as infinitely far, as in compare()
    const double e = std::fabs((double)a[i] - b[i]);
    mx = std::max(mx, (double)std::fabs(b[i])), d = std::max(d, std::isnan(e) ? INFINITY : e);
  }
  return mx > 0 ? d / mx : d;
}
// FNV-1a over the bits of a run's outputs: a change meant to leave them bitwise alone must print the same.
uint64_t digest(uint64_t h, const void* p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 0x100000001b3ull;
  return h;
}
int flash(int T) {
  const int B = 2;
  bool all = true;
  for (int hd : {32, 64, 80, 128, 256}) {
    ModelConfig c;
    c.hidden = 2 * hd, c.layers = 2, c.heads = 2, c.inter = 4 * c.hidden, c.vocab = 512, c.rotaryPct = 0.25;
    const auto w = initWeights(c, 3);
    const auto ids = randomIds(B * T, c.vocab, 4);
    Engine cpu(c, 4, "auto");
    loadBoth(&cpu, nullptr, w);
    std::vector<float> lc((size_t)B * T * c.vocab);
    cpu.logits(ids.data(), B, T, lc.data());
    const double lossC = cpu.trainStep(ids.data(), B, T, 1.0);
    struct Run {
      std::vector<float> logits;
      double loss;
      std::vector<std::vector<float>> grads;
    };
    auto run = [&](const char* attention) {
      setenv("CPT_CUDA_ATTENTION", attention, 1);
      Gpu g(c, true);
      loadBoth(nullptr, &g, w);
      Run r{g.logits(ids, B, T, c.vocab), g.train(ids, B, T), {}};
      for (int i = 0; i < g.n(); i++) r.grads.push_back(g.get(1, i));
      return r;
    };
    const Run un = run("unfused");
    // on mma.sync tiles, forward and backward
    const Run fu = run("mma"), again = run("mma");
    double gu = 0, gf = 0;
    for (size_t i = 0; i < un.grads.size(); i++) {
      const float* ref = cpu.grads() + cpu.params()[i].offset;
      gu = std::max(gu, relErr(un.grads[i], ref)), gf = std::max(gf, relErr(fu.grads[i], ref));
    }
    const double lu = relErr(un.logits, lc.data()), lf = relErr(fu.logits, lc.data());
    const double du = std::fabs(un.loss - lossC), df = std::fabs(fu.loss - lossC);
    bool same = fu.loss == again.loss && fu.logits == again.logits;
    for (size_t i = 0; i < fu.grads.size(); i++) same &= fu.grads[i] == again.grads[i];
    // the mma path ran: it rounds P against the running maximum, so its logits are not the unfused path's
    const bool taken = fu.logits != un.logits;
    uint64_t h = digest(0xcbf29ce484222325ull, fu.logits.data(), fu.logits.size() * 4);
    h = digest(h, &fu.loss, sizeof fu.loss);
    for (const auto& gr : fu.grads) h = digest(h, gr.data(), gr.size() * 4);
    // Within 1.5x the unfused path's error, or within bf16 rounding of the reference (2^-8); and the unfused
    // path itself (bf16 throughout: the head split, GELU, layer norms by 16-byte runs at these widths) within
    // four bf16 roundings of the reference for logits, eight for gradients.
    auto fine = [](double f, double u) { return f <= std::max(1.5 * u, 4e-3); };
    const bool ok = fine(lf, lu) && fine(gf, gu) && df <= std::max(1.5 * du, 4e-3 * lossC) && same && lu <= 0x1p-6 && gu <= 0x1p-5 && taken;
    std::printf("mma_hd%d_error logits %.2e (unfused %.2e) | loss %.2e (unfused %.2e) | grads %.2e (unfused %.2e) | bitwise repeat %s | digest %016llx%s\n",
                hd, lf, lu, df, du, gf, gu, same ? "yes" : "NO", (unsigned long long)h, taken ? "" : " | the mma path did not run");
    std::printf("mma_hd%d=%s\n", hd, ok ? "pass" : "FAIL");
    all &= ok;
    unsetenv("CPT_CUDA_ATTENTION");
  }
  return all ? 0 : 1;
}

// ---- bench: bf16 training throughput and MFU, FLOPs counted as src/recipe/estimate.ts does;
// then where a step's time goes: `profiled` steps with every launch timed by CUDA events, beside
// the performance model's figures for the same step when `model` (a TSV written by
// npm run cuda:bundle: what, launches, ideal ms, derated ms, what bounds it) is readable.
struct Row {
  int launches = 0;
  double ms = 0, ideal = -1, derated = -1;
  std::string bound = "-";
};
void profileTable(const std::string& name, const std::string& measured, double stepMs, int profiled,
                  const std::string& model) {
  std::map<std::string, Row> rows;
  double sum = 0;
  std::istringstream in(measured);
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find('\t'), b = line.find('\t', a + 1);
    Row& r = rows[line.substr(0, a)];
    r.launches = std::atoi(line.c_str() + a + 1) / profiled;
    r.ms = std::atof(line.c_str() + b + 1) / profiled;
    sum += r.ms;
  }
  const std::string other = "other: host copies and synchronisation, memsets, gaps between launches";
  rows[other].ms = std::max(0.0, stepMs - sum);
  double ideal = 0, derated = 0;
  const std::string text = model.empty() ? "" : readAll(model);
  std::istringstream mi(text);
  for (std::string line; std::getline(mi, line);) {
    std::vector<std::string> f;
    for (size_t p = 0, q; p <= line.size(); p = q + 1) f.push_back(line.substr(p, (q = std::min(line.find('\t', p), line.size())) - p));
    if (f.size() != 5) continue;
    Row& r = rows[rows.count(f[0]) ? f[0] : other];
    if (rows.count(f[0])) r.bound = f[4];
    r.ideal = std::max(0.0, r.ideal) + std::atof(f[2].c_str());
    r.derated = std::max(0.0, r.derated) + std::atof(f[3].c_str());
    ideal += std::atof(f[2].c_str()), derated += std::atof(f[3].c_str());
  }
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.second.ms > y.second.ms; });
  std::printf("# %s: where a bf16 training step's time goes, measured with CUDA events (mean of %d profiled steps)%s\n",
              name.c_str(), profiled, text.empty() ? "" : ", beside the model (npm run model:cuda, H200: ideal roofline, derated)");
  std::printf("#   measured ms  launches   model ms  derated ms  measured/derated  model's bound  what\n");
  auto fmt = [](double v) {
    char b[32];
    if (v < 0) return std::string("         -");
    std::snprintf(b, sizeof b, "%10.2f", v);
    return std::string(b);
  };
  for (const auto& [what, r] : sorted) {
    char ratio[32] = "               -";
    if (r.derated > 0) std::snprintf(ratio, sizeof ratio, "%15.2fx", r.ms / r.derated);
    std::printf("#   %11.2f  %8d %s  %s  %s  %-13s  %s\n", r.ms, r.launches, fmt(r.ideal).c_str(), fmt(r.derated).c_str(), ratio,
                r.bound.c_str(), what.c_str());
  }
  std::printf("profile_step_ms_%s=%.1f\n", name.c_str(), stepMs);
  if (!text.empty()) std::printf("model_step_ms_%s=%.1f (ideal) %.1f (derated)\n", name.c_str(), ideal, derated);
}

int bench(const std::string& shape, int B, int T, int steps, bool recompute, double peakTflops, const std::string& model) {
  const ModelConfig c = pythiaShape(shape);
  const auto envIs = [](const char* key, const char* value) {
    const char* v = std::getenv(key);
    return v && std::string(v) == value;
  };
  const std::string name =
      shape + (envIs("CPT_CUDA_ATTENTION", "mma") ? "_mma" : "") + (envIs("CPT_CUDA_EPILOGUES", "0") ? "_kernels" : "") +
      (envIs("CPT_CUDA_SOFTMAX", "warp") ? "_warpsoftmax" : "") +
      (envIs("CPT_CUDA_GRAPHS", "0") ? "_eager" : "");
  Gpu g(c, true, recompute);
  loadBoth(nullptr, &g, initWeights(c, 1));
  size_t total;
  paramTable(c, &total);
  const double flopsPerToken = 6.0 * (double)(total - (size_t)c.vocab * c.hidden) + 12.0 * c.layers * c.hidden * T;
  const auto ids = randomIds(B * T, c.vocab, 5);
  for (int s = 0; s < 2; s++) g.train(ids, B, T), g.adamw(kAdam);  // warm-up: allocation, algorithm choice
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; s++) g.train(ids, B, T), g.adamw(kAdam);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokS = (double)B * T * steps / sec, tflops = tokS * flopsPerToken / 1e12;
  std::printf("cuda_train_tok_s_%s=%.0f\ncuda_tflops_%s=%.1f\ncuda_mfu_%s=%.3f\n", name.c_str(), tokS, name.c_str(),
              tflops, name.c_str(), tflops / peakTflops);
  const int profiled = 2;
  cpt_cuda_profile_start();
  for (int s = 0; s < profiled; s++) g.train(ids, B, T), g.adamw(kAdam);
  std::vector<char> buf(1 << 16);
  const int need = cpt_cuda_profile_stop(buf.data(), buf.size());
  if (need < 0) throw std::runtime_error(cpt_cuda_error());
  profileTable(name, buf.data(), 1e3 * sec / steps, profiled, model);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a step killed at its deadline keeps what it printed
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "golden" && argc > 2) return golden(argv[2]);
    if (cmd == "flash") return flash(argc > 2 ? std::atoi(argv[2]) : 150);
    if (cmd == "parity")
      return parity(argc > 2 ? std::atoi(argv[2]) : 150, argc > 3 ? std::atoi(argv[3]) : 5);
    if (cmd == "probe") {
      char buf[2048];
      const int rc = cpt_cuda_describe(0, buf, sizeof buf);
      std::fputs(buf, stdout);
      return rc == 0 ? 0 : 1;
    }
    if (cmd == "reference" && argc > 3)
      return reference(argv[2], argv[3], argc > 4 ? std::atoi(argv[4]) : 200, argc > 5 ? std::atoi(argv[5]) : 2,
                       argc > 6 ? std::atoi(argv[6]) : 256, argc > 7 ? std::atoi(argv[7]) : 16);
    if (cmd == "train" && argc > 3)
      return train(argv[2], argv[3], argc > 4 ? std::atoi(argv[4]) : 200, argc > 5 ? std::atoi(argv[5]) : 2,
                   argc > 6 ? std::atoi(argv[6]) : 256);
    if (cmd == "bench" && argc > 2)
      return bench(argv[2], argc > 3 ? std::atoi(argv[3]) : 4, argc > 4 ? std::atoi(argv[4]) : 2048,
                   argc > 5 ? std::atoi(argv[5]) : 10, argc > 6 && std::atoi(argv[6]) != 0,
                   std::getenv("PEAK_TFLOPS") ? std::atof(std::getenv("PEAK_TFLOPS")) : 989.0,
                   argc > 7 ? argv[7] : "");
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "cuda_check %s: %s\n", cmd.c_str(), ex.what());
    return 2;
  }
  std::fprintf(stderr, "usage: cuda_check probe | golden DIR | parity [T steps] | flash [T] | reference TOKENS OUT [steps B T threads] | train TOKENS REF [steps B T] | bench SHAPE [B T steps recompute MODEL_TSV]\n");
  return 2;
}
