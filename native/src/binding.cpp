// N-API surface of the engine: one class, typed arrays in and out (copies at the boundary).
#include <napi.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "engine.h"

namespace {

using cpt::Engine;

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
                                       InstanceMethod("logits", &NativeEngine::Logits),
                                       InstanceMethod("trainStep", &NativeEngine::TrainStep),
                                       InstanceMethod("evalLoss", &NativeEngine::EvalLoss),
                                       InstanceMethod("tokenLogprobs", &NativeEngine::TokenLogprobs),
                                       InstanceMethod("meanHidden", &NativeEngine::MeanHidden),
                                       InstanceMethod("zeroGrads", &NativeEngine::ZeroGrads),
                                       InstanceMethod("applyAdamW", &NativeEngine::ApplyAdamW),
                                       InstanceMethod("dispose", &NativeEngine::Dispose),
                                   });
    exports.Set("NativeEngine", f);
    return exports;
  }

  // new NativeEngine(config: {hidden, layers, heads, inter, vocab, rotaryPct, rotaryBase, lnEps,
  //                  exactGelu, parallelResidual, tied}, threads, kernel, precision?: "fp32" | "bf16")
  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    Napi::Object o = info[0].As<Napi::Object>();
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
    const int threads = info[1].As<Napi::Number>().Int32Value();
    const std::string kernel = info[2].As<Napi::String>().Utf8Value();
    const std::string precision = info.Length() > 3 ? info[3].As<Napi::String>().Utf8Value() : "fp32";
    if (precision != "fp32" && precision != "bf16")
      throw Napi::Error::New(info.Env(), "precision \"" + precision + "\" is unknown (fp32, bf16)");
    try {
      e_ = std::make_unique<Engine>(c, threads, kernel.c_str(), precision == "bf16");
    } catch (const std::exception& ex) {
      throw Napi::Error::New(info.Env(), ex.what());
    }
  }

 private:
  Engine& eng(const Napi::CallbackInfo& info) {
    if (!e_) throw Napi::Error::New(info.Env(), "native engine used after dispose()");
    return *e_;
  }

  static const int32_t* ids(const Napi::CallbackInfo& info, int B, int T) {
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
    Engine& e = eng(info);
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("kernel", e.kernelName());
    r.Set("threads", e.threads());
    r.Set("precision", e.precision());
    Napi::Array names = Napi::Array::New(info.Env(), e.params().size());
    Napi::Array sizes = Napi::Array::New(info.Env(), e.params().size());
    for (size_t i = 0; i < e.params().size(); i++) {
      names.Set(i, e.params()[i].name);
      sizes.Set(i, (double)e.params()[i].size);
    }
    r.Set("names", names);
    r.Set("sizes", sizes);
    return r;
  }

  // which: 0 weights, 1 grads, 2 first moments, 3 second moments
  float* slot(Engine& e, int which, int index, const Napi::CallbackInfo& info, size_t* n) {
    if (index < 0 || index >= (int)e.params().size()) throw Napi::Error::New(info.Env(), "bad tensor index");
    float* base = which == 0 ? e.weights() : which == 1 ? e.grads() : which == 2 ? e.moment1() : e.moment2();
    *n = e.params()[index].size;
    return base + e.params()[index].offset;
  }

  Napi::Value SetTensor(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    size_t n;
    float* dst = slot(e, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), info, &n);
    Napi::Float32Array a = info[2].As<Napi::Float32Array>();
    if (a.ElementLength() != n)
      throw Napi::Error::New(info.Env(), "tensor size " + std::to_string(a.ElementLength()) + " != expected " +
                                             std::to_string(n));
    std::memcpy(dst, a.Data(), n * sizeof(float));
    return info.Env().Undefined();
  }

  Napi::Value GetTensor(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    size_t n;
    float* src = slot(e, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), info, &n);
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), n);
    std::memcpy(a.Data(), src, n * sizeof(float));
    return a;
  }

  Napi::Value GetStep(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)eng(info).step); }
  Napi::Value SetStep(const Napi::CallbackInfo& info) {
    eng(info).step = info[0].As<Napi::Number>().Int64Value();
    return info.Env().Undefined();
  }

  Napi::Value Logits(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    const int B = info[1].As<Napi::Number>().Int32Value(), T = info[2].As<Napi::Number>().Int32Value();
    const int32_t* p = ids(info, B, T);
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), (size_t)B * T * e.params()[0].shape[0]);
    guard(info, [&] { e.logits(p, B, T, out.Data()); });
    return out;
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    const int B = info[1].As<Napi::Number>().Int32Value(), T = info[2].As<Napi::Number>().Int32Value();
    const double scale = info[3].As<Napi::Number>().DoubleValue();
    const int32_t* p = ids(info, B, T);
    return Napi::Number::New(info.Env(), guard(info, [&] { return e.trainStep(p, B, T, scale); }));
  }

  Napi::Value EvalLoss(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    const int B = info[1].As<Napi::Number>().Int32Value(), T = info[2].As<Napi::Number>().Int32Value();
    const int32_t* p = ids(info, B, T);
    return Napi::Number::New(info.Env(), guard(info, [&] { return e.evalLoss(p, B, T); }));
  }

  Napi::Value TokenLogprobs(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    const int B = info[1].As<Napi::Number>().Int32Value(), T = info[2].As<Napi::Number>().Int32Value();
    const int32_t* p = ids(info, B, T);
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), (size_t)B * (T > 1 ? T - 1 : 0));
    guard(info, [&] { e.tokenLogprobs(p, B, T, out.Data()); });
    return out;
  }

  Napi::Value MeanHidden(const Napi::CallbackInfo& info) {
    Engine& e = eng(info);
    const int B = info[1].As<Napi::Number>().Int32Value(), T = info[2].As<Napi::Number>().Int32Value();
    const int32_t* p = ids(info, B, T);
    Napi::Int32Array len = info[3].As<Napi::Int32Array>();
    if ((int)len.ElementLength() != B) throw Napi::Error::New(info.Env(), "lengths must have one entry per row");
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), (size_t)B * e.params()[0].shape[1]);
    guard(info, [&] { e.meanHidden(p, B, T, len.Data(), out.Data()); });
    return out;
  }

  Napi::Value ZeroGrads(const Napi::CallbackInfo& info) {
    eng(info).zeroGrads();
    return info.Env().Undefined();
  }

  Napi::Value ApplyAdamW(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    cpt::AdamW a{o.Get("lr").As<Napi::Number>().DoubleValue(),    o.Get("beta1").As<Napi::Number>().DoubleValue(),
                 o.Get("beta2").As<Napi::Number>().DoubleValue(), o.Get("eps").As<Napi::Number>().DoubleValue(),
                 o.Get("weightDecay").As<Napi::Number>().DoubleValue(), o.Get("clip").As<Napi::Number>().DoubleValue()};
    return Napi::Number::New(info.Env(), eng(info).applyAdamW(a));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    e_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<Engine> e_;
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return NativeEngine::Init(env, exports); }

}  // namespace

NODE_API_MODULE(cpt_native, InitAll)
