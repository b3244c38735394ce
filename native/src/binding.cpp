// N-API surface of the engines: one class, typed arrays in and out (copies at the boundary), over
// two backends: the CPU engine compiled in, or the CUDA engine (native/cuda/) loaded from its own
// shared library with dlopen, so that this addon builds and runs where no CUDA exists.
#include <dlfcn.h>
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <map>
#include <string>
#include <vector>

#include "../cuda/cpt_cuda.h"
#include "engine.h"
#include "ops.h"

namespace {

// What the class needs of a backend. Tensors: which 0 weights, 1 grads, 2 first moments,
// 3 second moments; index into the parameter table.
struct Backend {
  virtual ~Backend() = default;
  std::vector<std::string> names;
  std::vector<size_t> sizes;
  int vocab = 0, hidden = 0;
  virtual void describe(Napi::Object& r) = 0;
  virtual void setTensor(int which, int i, const float* p) = 0;
  virtual void getTensor(int which, int i, float* out) = 0;
  virtual int64_t getStep() = 0;
  virtual void setStep(int64_t s) = 0;
#define CPT_DECLARE_OP(method, c_name, result, out_elems, params, args, js_args) \
  virtual CPT_OP_SIGNATURE(method, result, params) = 0;
  CPT_OPS(CPT_DECLARE_OP)
#undef CPT_DECLARE_OP
  virtual void zeroGrads() = 0;
  virtual double applyAdamW(const cpt::AdamW& a) = 0;
};

struct CpuBackend final : Backend {
  std::unique_ptr<cpt::Engine> e;
  CpuBackend(const cpt::ModelConfig& c, int threads, const std::string& kernel, const char* bf16)
      : e(std::make_unique<cpt::Engine>(c, threads, kernel.c_str(), bf16)) {
    for (const auto& p : e->params()) names.push_back(p.name), sizes.push_back(p.size);
    vocab = c.vocab, hidden = c.hidden;
  }
  float* slot(int which, int i) {
    float* base = which == 0 ? e->weights() : which == 1 ? e->grads() : which == 2 ? e->moment1() : e->moment2();
    return base + e->params()[i].offset;
  }
  void describe(Napi::Object& r) override {
    r.Set("kernel", e->kernelName());
    r.Set("threads", e->threads());
    r.Set("precision", e->precision());
    r.Set("bf16Kernel", e->bf16Kernel());
  }
  void setTensor(int which, int i, const float* p) override { std::memcpy(slot(which, i), p, sizes[i] * sizeof(float)); }
  void getTensor(int which, int i, float* out) override { std::memcpy(out, slot(which, i), sizes[i] * sizeof(float)); }
  int64_t getStep() override { return e->step; }
  void setStep(int64_t s) override { e->step = s; }
#define CPT_CALL_OUT(method, args) e->method(ids, B, T CPT_UNPAREN args, out)
#define CPT_CALL_LOSS(method, args) return e->method(ids, B, T CPT_UNPAREN args)
#define CPT_FORWARD_OP(method, c_name, result, out_elems, params, args, js_args) \
  CPT_OP_SIGNATURE(method, result, params) override { CPT_CALL_##result(method, args); }
  CPT_OPS(CPT_FORWARD_OP)
#undef CPT_FORWARD_OP
#undef CPT_CALL_OUT
#undef CPT_CALL_LOSS
  void zeroGrads() override { e->zeroGrads(); }
  double applyAdamW(const cpt::AdamW& a) override { return e->applyAdamW(a); }
};

// The CUDA library's C ABI (cpt_cuda.h), resolved once per process: one list, used to declare
// the pointers and to look them up.
#define CPT_CUDA_FUNCS(X)                                                                                   \
  X(cpt_cuda_abi) X(cpt_cuda_error) X(cpt_cuda_probe) X(cpt_cuda_create) X(cpt_cuda_destroy)                \
  X(cpt_cuda_device_name) X(cpt_cuda_num_params) X(cpt_cuda_param_name) X(cpt_cuda_param_size)             \
  X(cpt_cuda_set_tensor) X(cpt_cuda_get_tensor) X(cpt_cuda_get_step) X(cpt_cuda_set_step) X(cpt_cuda_zero_grads) \
  X(cpt_cuda_adamw)
// ... and one per batch operation of ops.h.
#define CPT_CUDA_OP_FUNC(method, c_name, result, out_elems, params, args, js_args) CPT_CUDA_EACH(cpt_cuda_##c_name)

struct CudaApi {
#define CPT_CUDA_EACH(name) decltype(&::name) name = nullptr;
  CPT_CUDA_FUNCS(CPT_CUDA_EACH)
  CPT_OPS(CPT_CUDA_OP_FUNC)
#undef CPT_CUDA_EACH
  // The simulator's controls (native/cuda/sim/cpt_sim.h): present only in a simulator build.
  void (*simSetPlan)(int) = nullptr;
  void (*simMemory)(size_t*, size_t*, size_t*) = nullptr;
  void (*simSetMemLimit)(size_t) = nullptr;
  void (*simResetPeak)(void) = nullptr;
  int (*simTrace)(const char*) = nullptr;
};

// dlopen the library (it finds cuBLASLt itself at run time: cublaslt_loader.cpp), one per path:
// cpt may probe the CUDA 13 build and then use the CUDA 11.8 one.
const CudaApi& cudaApi(const std::string& lib) {
  static std::map<std::string, CudaApi> loaded;
  if (auto it = loaded.find(lib); it != loaded.end()) return it->second;
  CudaApi api;
  dlerror();
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw std::runtime_error("cannot load the CUDA engine " + lib + ": " + dlerror());
#define CPT_CUDA_EACH(name)                                                    \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(h, #name));            \
  if (!api.name) throw std::runtime_error(lib + " lacks " #name " (rebuild it: npm run build:native)");
  CPT_CUDA_FUNCS(CPT_CUDA_EACH)
  CPT_OPS(CPT_CUDA_OP_FUNC)
#undef CPT_CUDA_EACH
  api.simSetPlan = reinterpret_cast<void (*)(int)>(dlsym(h, "cpt_sim_set_plan"));
  api.simMemory = reinterpret_cast<void (*)(size_t*, size_t*, size_t*)>(dlsym(h, "cpt_sim_memory"));
  api.simSetMemLimit = reinterpret_cast<void (*)(size_t)>(dlsym(h, "cpt_sim_set_mem_limit"));
  api.simResetPeak = reinterpret_cast<void (*)(void)>(dlsym(h, "cpt_sim_reset_peak"));
  api.simTrace = reinterpret_cast<int (*)(const char*)>(dlsym(h, "cpt_sim_trace"));
  if (api.cpt_cuda_abi() != CPT_CUDA_ABI)
    throw std::runtime_error(lib + " has ABI " + std::to_string(api.cpt_cuda_abi()) + ", this addon expects " +
                             std::to_string(CPT_CUDA_ABI) + " (rebuild: npm run build:native)");
  return loaded.emplace(lib, api).first->second;
}

struct CudaBackend final : Backend {
  const CudaApi& api;
  CptCudaEngine* e = nullptr;
  bool bf16, recompute;
  CudaBackend(const CudaApi& a, const cpt::ModelConfig& m, bool bf16_, bool recompute_, int device)
      : api(a), bf16(bf16_), recompute(recompute_) {
    const CptCudaConfig c{m.hidden, m.layers, m.heads, m.inter, m.vocab, m.rotaryPct, m.rotaryBase, m.lnEps,
                          m.exactGelu, m.parallelResidual, m.tied};
    const CptCudaOptions o{bf16 ? 1 : 0, recompute ? 1 : 0, device};
    e = api.cpt_cuda_create(&c, &o);
    if (!e) throw std::runtime_error(api.cpt_cuda_error());
    for (int i = 0; i < api.cpt_cuda_num_params(e); i++)
      names.push_back(api.cpt_cuda_param_name(e, i)), sizes.push_back(api.cpt_cuda_param_size(e, i));
    vocab = m.vocab, hidden = m.hidden;
  }
  ~CudaBackend() override { api.cpt_cuda_destroy(e); }
  void ok(int rc) {
    if (rc != 0) throw std::runtime_error(api.cpt_cuda_error());
  }
  void describe(Napi::Object& r) override {
    r.Set("kernel", "cublaslt");
    r.Set("threads", 1);
    r.Set("precision", bf16 ? "bf16" : "fp32");
    r.Set("device", api.cpt_cuda_device_name(e));
    r.Set("recompute", recompute);
  }
  void setTensor(int which, int i, const float* p) override { ok(api.cpt_cuda_set_tensor(e, which, i, p)); }
  void getTensor(int which, int i, float* out) override { ok(api.cpt_cuda_get_tensor(e, which, i, out)); }
  int64_t getStep() override { return api.cpt_cuda_get_step(e); }
  void setStep(int64_t s) override { api.cpt_cuda_set_step(e, s); }
#define CPT_CALL_OUT(c_name, args) ok(api.cpt_cuda_##c_name(e, ids, B, T CPT_UNPAREN args, out))
#define CPT_CALL_LOSS(c_name, args) \
  double l;                         \
  ok(api.cpt_cuda_##c_name(e, ids, B, T CPT_UNPAREN args, &l)); \
  return l
#define CPT_FORWARD_OP(method, c_name, result, out_elems, params, args, js_args) \
  CPT_OP_SIGNATURE(method, result, params) override { CPT_CALL_##result(c_name, args); }
  CPT_OPS(CPT_FORWARD_OP)
#undef CPT_FORWARD_OP
#undef CPT_CALL_OUT
#undef CPT_CALL_LOSS
  void zeroGrads() override { ok(api.cpt_cuda_zero_grads(e)); }
  double applyAdamW(const cpt::AdamW& a) override {
    double n;
    ok(api.cpt_cuda_adamw(e, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.clip, &n));
    return n;
  }
};

std::string str(const Napi::Object& o, const char* key, const char* dflt) {
  const Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : dflt;
}
int num(const Napi::Object& o, const char* key, int dflt) {
  const Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : dflt;
}

cpt::ModelConfig readConfig(const Napi::Object& o) {
  cpt::ModelConfig c;
  c.hidden = o.Get("hidden").As<Napi::Number>().Int32Value();
  c.layers = o.Get("layers").As<Napi::Number>().Int32Value();
  c.heads = o.Get("heads").As<Napi::Number>().Int32Value();
  c.inter = o.Get("inter").As<Napi::Number>().Int32Value();
  c.vocab = o.Get("vocab").As<Napi::Number>().Int32Value();
  c.rotaryPct = o.Get("rotaryPct").As<Napi::Number>().DoubleValue();
  c.rotaryBase = o.Get("rotaryBase").As<Napi::Number>().DoubleValue();
  c.lnEps = o.Get("lnEps").As<Napi::Number>().DoubleValue();
  c.exactGelu = o.Get("exactGelu").As<Napi::Boolean>().Value();
  c.parallelResidual = o.Get("parallelResidual").As<Napi::Boolean>().Value();
  c.tied = o.Get("tied").As<Napi::Boolean>().Value();
  return c;
}

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "NativeEngine",
                                   {
                                       InstanceMethod("info", &NativeEngine::Info),
                                       InstanceMethod("setTensor", &NativeEngine::SetTensor),
                                       InstanceMethod("getTensor", &NativeEngine::GetTensor),
                                       InstanceMethod("getStep", &NativeEngine::GetStep),
                                       InstanceMethod("setStep", &NativeEngine::SetStep),
#define CPT_METHOD_ENTRY(method, c_name, result, out_elems, params, args, js_args) \
  InstanceMethod(#method, &NativeEngine::Op_##method),
                                       CPT_OPS(CPT_METHOD_ENTRY)
#undef CPT_METHOD_ENTRY
                                       InstanceMethod("zeroGrads", &NativeEngine::ZeroGrads),
                                       InstanceMethod("applyAdamW", &NativeEngine::ApplyAdamW),
                                       InstanceMethod("dispose", &NativeEngine::Dispose),
                                   });
    exports.Set("NativeEngine", f);
    exports.Set("cudaProbe", Napi::Function::New(env, CudaProbe));
    exports.Set("cudaPlan", Napi::Function::New(env, CudaPlan));
    return exports;
  }

  // new NativeEngine(config: {hidden, layers, heads, inter, vocab, rotaryPct, rotaryBase, lnEps,
  //   exactGelu, parallelResidual, tied}, options: {device: "cpu" | "cuda", precision?: "fp32" |
  //   "bf16"; cpu: threads, kernel, bf16Kernel?: "auto" | "amx" | "avx512bf16"; cuda: lib,
  //   cudaDevice?, recompute?})
  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    const cpt::ModelConfig c = readConfig(info[0].As<Napi::Object>());
    Napi::Object opt = info[1].As<Napi::Object>();
    const std::string device = str(opt, "device", "cpu"), precision = str(opt, "precision", "fp32");
    if (precision != "fp32" && precision != "bf16")
      throw Napi::Error::New(info.Env(), "precision \"" + precision + "\" is unknown (fp32, bf16)");
    try {
      if (device == "cuda") {
        const Napi::Value rc = opt.Get("recompute");
        b_ = std::make_unique<CudaBackend>(cudaApi(str(opt, "lib", "")), c, precision == "bf16",
                                           rc.IsBoolean() && rc.As<Napi::Boolean>().Value(), num(opt, "cudaDevice", 0));
      } else {
        const std::string bf16 = str(opt, "bf16Kernel", "auto");
        b_ = std::make_unique<CpuBackend>(c, num(opt, "threads", 1), str(opt, "kernel", "auto"),
                                          precision == "bf16" ? bf16.c_str() : nullptr);
      }
    } catch (const std::exception& ex) {
      throw Napi::Error::New(info.Env(), ex.what());
    }
  }

 private:
  // cudaPlan(simLib, config, bf16, recompute, batch, seq[, trace]) -> the most device memory the
  // CUDA engine holds at once over one training step and AdamW update of [batch, seq], counted from
  // its own cudaMalloc calls by the simulator in plan mode (nothing runs, no page is touched).
  // With `trace`, a second step's launches, products and copies are written there (cpt_sim_trace).
  static Napi::Value CudaPlan(const Napi::CallbackInfo& info) {
    const std::string lib = info[0].As<Napi::String>().Utf8Value();
    try {
      const CudaApi& api = cudaApi(lib);
      if (!api.simSetPlan || !api.simMemory || !api.simSetMemLimit || !api.simResetPeak)
        throw std::runtime_error(lib + " is a GPU build; memory plans need the simulator build (native/build-cuda-sim)");
      const cpt::ModelConfig c = readConfig(info[1].As<Napi::Object>());
      const int B = info[4].As<Napi::Number>().Int32Value(), T = info[5].As<Napi::Number>().Int32Value();
      size_t cur, peak, limit;
      api.simMemory(&cur, &peak, &limit);
      api.simSetPlan(1);
      api.simSetMemLimit((size_t)1 << 50);  // count everything; the caller compares with GPU sizes
      api.simResetPeak();
      try {
        CudaBackend b(api, c, info[2].As<Napi::Boolean>().Value(), info[3].As<Napi::Boolean>().Value(), 0);
        const std::vector<int32_t> ids((size_t)B * T, 0);
        const cpt::AdamW adamw{1e-4, 0.9, 0.95, 1e-8, 0.1, 1.0};
        if (info.Length() > 6 && info[6].IsString()) {
          // A step as every step after the first runs: buffers, rotary tables and the weights'
          // first bf16 copy are the first step's, untraced.
          b.trainStep(ids.data(), B, T, 1.0);
          b.applyAdamW(adamw);
          if (!api.simTrace || api.simTrace(info[6].As<Napi::String>().Utf8Value().c_str()) != 0)
            throw std::runtime_error("cannot write the launch trace " + info[6].As<Napi::String>().Utf8Value());
        }
        b.trainStep(ids.data(), B, T, 1.0);
        b.applyAdamW(adamw);
        api.simMemory(nullptr, &peak, nullptr);
      } catch (...) {
        if (api.simTrace) api.simTrace(nullptr);
        api.simSetPlan(0), api.simSetMemLimit(limit);
        throw;
      }
      if (api.simTrace) api.simTrace(nullptr);
      api.simSetPlan(0), api.simSetMemLimit(limit);
      return Napi::Number::New(info.Env(), (double)peak);
    } catch (const std::exception& ex) {
      throw Napi::Error::New(info.Env(), ex.what());
    }
  }

  // cudaProbe(lib, device) -> device name; throws with the reason (no device, no library).
  static Napi::Value CudaProbe(const Napi::CallbackInfo& info) {
    try {
      const CudaApi& api = cudaApi(info[0].As<Napi::String>().Utf8Value());
      char name[256];
      if (api.cpt_cuda_probe(info[1].As<Napi::Number>().Int32Value(), name, sizeof(name)) != 0)
        throw std::runtime_error(api.cpt_cuda_error());
      return Napi::String::New(info.Env(), name);
    } catch (const std::exception& ex) {
      throw Napi::Error::New(info.Env(), ex.what());
    }
  }

  Backend& eng(const Napi::CallbackInfo& info) {
    if (!b_) throw Napi::Error::New(info.Env(), "engine used after dispose()");
    return *b_;
  }

  static const int32_t* idsOf(const Napi::CallbackInfo& info, int B, int T) {
    Napi::Int32Array a = info[0].As<Napi::Int32Array>();
    if ((int64_t)a.ElementLength() != (int64_t)B * T)
      throw Napi::Error::New(info.Env(), "ids length " + std::to_string(a.ElementLength()) + " != batch * seq = " +
                                             std::to_string((int64_t)B * T));
    return a.Data();
  }

  template <class F>
  static auto guard(const Napi::CallbackInfo& info, F f) -> decltype(f()) {
    try {
      return f();
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& ex) {
      throw Napi::Error::New(info.Env(), ex.what());
    }
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Backend& e = eng(info);
    Napi::Object r = Napi::Object::New(info.Env());
    e.describe(r);
    Napi::Array names = Napi::Array::New(info.Env(), e.names.size());
    Napi::Array sizes = Napi::Array::New(info.Env(), e.names.size());
    for (size_t i = 0; i < e.names.size(); i++) {
      names.Set(i, e.names[i]);
      sizes.Set(i, (double)e.sizes[i]);
    }
    r.Set("names", names);
    r.Set("sizes", sizes);
    return r;
  }

  static int slot(Backend& e, const Napi::CallbackInfo& info, int* which) {
    *which = info[0].As<Napi::Number>().Int32Value();
    const int index = info[1].As<Napi::Number>().Int32Value();
    if (*which < 0 || *which > 3 || index < 0 || index >= (int)e.names.size())
      throw Napi::Error::New(info.Env(), "bad tensor index");
    return index;
  }

  Napi::Value SetTensor(const Napi::CallbackInfo& info) {
    Backend& e = eng(info);
    int which;
    const int i = slot(e, info, &which);
    Napi::Float32Array a = info[2].As<Napi::Float32Array>();
    if (a.ElementLength() != e.sizes[i])
      throw Napi::Error::New(info.Env(), "tensor size " + std::to_string(a.ElementLength()) + " != expected " +
                                             std::to_string(e.sizes[i]));
    guard(info, [&] { e.setTensor(which, i, a.Data()); });
    return info.Env().Undefined();
  }

  Napi::Value GetTensor(const Napi::CallbackInfo& info) {
    Backend& e = eng(info);
    int which;
    const int i = slot(e, info, &which);
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), e.sizes[i]);
    guard(info, [&] { e.getTensor(which, i, a.Data()); });
    return a;
  }

  Napi::Value GetStep(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)eng(info).getStep()); }
  Napi::Value SetStep(const Napi::CallbackInfo& info) {
    eng(info).setStep(info[0].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  }

  // The batch operations of ops.h: (ids, batch, seq, ...js_args) -> Float32Array (OUT) or number (LOSS).
  static double jsNumber(const Napi::CallbackInfo& info, int k, double dflt) {
    return info[k].IsUndefined() ? dflt : info[k].As<Napi::Number>().DoubleValue();
  }
  static const int32_t* jsRows(const Napi::CallbackInfo& info, int k, int B) {
    Napi::Int32Array a = info[k].As<Napi::Int32Array>();
    if ((int)a.ElementLength() != B) throw Napi::Error::New(info.Env(), "lengths must have one entry per row");
    return a.Data();
  }
#define CPT_RETURN_OUT(method, out_elems, js_args)                                                  \
  Napi::Float32Array r = Napi::Float32Array::New(info.Env(), out_elems);                            \
  float* out = r.Data();                                                                            \
  guard(info, [&] { e.method(ids, B, T CPT_UNPAREN js_args, out); });                               \
  return r
#define CPT_RETURN_LOSS(method, out_elems, js_args) \
  return Napi::Number::New(info.Env(), guard(info, [&] { return e.method(ids, B, T CPT_UNPAREN js_args); }))
#define CPT_NAPI_OP(method, c_name, result, out_elems, params, args, js_args)                       \
  Napi::Value Op_##method(const Napi::CallbackInfo& info) {                                        \
    Backend& e = eng(info);                                                                         \
    const int B = info[1].As<Napi::Number>().Int32Value(), T = info[2].As<Napi::Number>().Int32Value(); \
    const int32_t* ids = idsOf(info, B, T);                                                         \
    [[maybe_unused]] const int vocab = e.vocab, hidden = e.hidden;                                  \
    CPT_RETURN_##result(method, out_elems, js_args);                                                \
  }
  CPT_OPS(CPT_NAPI_OP)
#undef CPT_NAPI_OP
#undef CPT_RETURN_OUT
#undef CPT_RETURN_LOSS

  Napi::Value ZeroGrads(const Napi::CallbackInfo& info) {
    guard(info, [&] { eng(info).zeroGrads(); });
    return info.Env().Undefined();
  }

  Napi::Value ApplyAdamW(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    cpt::AdamW a{o.Get("lr").As<Napi::Number>().DoubleValue(),    o.Get("beta1").As<Napi::Number>().DoubleValue(),
                 o.Get("beta2").As<Napi::Number>().DoubleValue(), o.Get("eps").As<Napi::Number>().DoubleValue(),
                 o.Get("weightDecay").As<Napi::Number>().DoubleValue(), o.Get("clip").As<Napi::Number>().DoubleValue()};
    Backend& e = eng(info);
    return Napi::Number::New(info.Env(), guard(info, [&] { return e.applyAdamW(a); }));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    b_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<Backend> b_;
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return NativeEngine::Init(env, exports); }

}  // namespace

NODE_API_MODULE(cpt_native, InitAll)
