// cuda-sim: the part of the CUDA runtime API the CUDA engine uses, for compiling it with a host
// C++ compiler and running its kernels on the CPU (README.md beside this file says what is modelled
// and what is not). Kernels are launched with CPT_LAUNCH (native/cuda/common.h), which is <<<>>>
// under nvcc and cpt_sim::launch here; each block's threads run as fibers, so __syncthreads and
// the warp shuffles are real rendezvous that detect divergence.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// The runtime API version the stand-in follows (cuda_runtime_api.h defines it in CUDA itself).
#define CUDART_VERSION 13000

// ---- keywords: device code is host code here; __shared__ is one copy per block (blocks of one
// launch run one after another on one host thread, so a thread_local static is the block's).
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __align__(n) alignas(n)

// CUDA's vector types: one aligned load or store of two or four floats or 32-bit words.
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) uint4 {
  unsigned int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned int x, y;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
} cudaError_t;

typedef enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
} cudaMemcpyKind;

typedef enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
} cudaFuncAttribute;

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
typedef struct CUgraph_st* cudaGraph_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;
typedef enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
} cudaStreamCaptureMode;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major, minor;
  int multiProcessorCount;
  int l2CacheSize;
};

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
// Page-locked host memory: what an asynchronous host-to-device copy needs to be asynchronous.
cudaError_t cudaMallocHost(void** p, size_t bytes);
template <class T>
cudaError_t cudaMallocHost(T** p, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
// Streams (all blocking: they wait for the legacy default stream and it for them) and graphs:
// while a stream captures, work queued on it is recorded instead of run, and a graph launch runs
// the record in order. As on a GPU, work on another stream, host synchronisation, cudaMalloc and
// cudaFree during a capture are errors that invalidate it.
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

// ---- the simulator's device side (runtime.cpp)
namespace cpt_sim {

struct ThreadCoords {
  dim3 threadIdx, blockIdx, blockDim, gridDim;
};
// The running fiber's coordinates (valid inside a kernel only).
extern thread_local const ThreadCoords* tlsCoords;

enum class WarpOp : int { shflIdx, shflUp, shflDown, shflXor, ballot, any, all, sync };
// Posts this lane's part of a warp collective and waits for the lanes of `mask`; returns its result.
uint64_t warpCollective(const char* file, int line, WarpOp op, unsigned mask, uint64_t value, int arg, int width);
void syncthreads(const char* file, int line);
// Dynamic shared memory of the running block (the launch's third argument), 128-byte aligned.
void* dynamicSmem();
// Three 16x16 fp32 tiles per warp of the running block, where mma.sync and ldmatrix (mma.h)
// exchange their lanes' operands.
float* warpTiles(int warp);
// Whether [p, p + n) lies in the running block's dynamic shared memory (ldmatrix reads only there).
bool inSharedMemory(const void* p, size_t n);
// PTX's cp.async (n bytes, global to shared), cp.async.commit_group and cp.async.wait_group
// `pending`: a copy lands when a wait releases its group, not before (runtime.cpp).
void cpAsync(void* dst, const void* src, size_t n);
void cpAsyncCommit();
void cpAsyncWait(int pending);
// The running launch's tensor-core work, for the performance model's check: mma.sync operations
// (counted per lane, so a warp's one operation adds 32), bytes ldmatrix read, and the
// shared-memory wavefronts those reads took (mma.h).
void countWork(uint64_t mmaLanes, uint64_t ldmatrixBytes, uint64_t wavefronts = 0);

template <class T>
T shfl(const char* file, int line, WarpOp op, unsigned mask, T v, int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warpCollective(file, line, op, mask, bits, arg, width);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

// ---- launches: checked like the real runtime (configuration errors go to cudaGetLastError);
// every pointer argument must point into a device allocation.
struct Launch {
  const char* name;
  const void* func;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
};
// What to do with work queued on stream s: run it, record it (s is capturing), or nothing (it
// broke a capture: the error is set).
enum class Gate { run, record, refused };
Gate gate(cudaStream_t s, const char* what);
// Adds work to the capture's graph.
void record(std::function<void()> work);
// 0 when the launch may run; else the error the real runtime reports (set as the last error).
bool configure(const Launch& l);
// Names a pointer argument that is not in device memory (throws).
void checkArg(const Launch& l, int index, const void* p);
// Runs every block's threads; body(ctx) is one thread's work.
void run(const Launch& l, void (*body)(void*), void* ctx);
// The launch trace (cpt_sim_trace), for the performance model: whether one is being written, and
// one launch with its arguments as numbers (a pointer: 1 when set, 0 when null; else NaN).
bool tracing();
void traceLaunch(const Launch& l, const double* args, int n);
// After a launch ran (not in plan mode), its tensor-core work (countWork) beside its arguments,
// when it did any: {"counted": name, grid, block, args, "mma": operations, "ldmatrix": bytes,
// "wavefronts": shared-memory wavefronts of those reads}.
void traceWork(const Launch& l, const double* args, int n);

template <class... P>
struct Launcher {
  Launch l;
  void (*k)(P...);
  template <class... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    if (!configure(l)) return;
    // Arguments converted to the kernel's parameter types, as the real launch does.
    std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
    checkPointers(args, std::index_sequence_for<P...>{});
    if (tracing()) {
      double nums[sizeof...(P) + 1];
      numbers(args, nums, std::index_sequence_for<P...>{});
      traceLaunch(l, nums, (int)sizeof...(P));
    }
    const Gate g = gate(l.stream, l.name);
    if (g == Gate::record) {
      const Launcher self = *this;
      record([self, args]() mutable {
        self.checkPointers(args, std::index_sequence_for<P...>{});  // still allocated when replayed
        self.exec(args);
      });
    }
    if (g == Gate::run) exec(args);
  }

 private:
  void exec(std::tuple<typename std::decay<P>::type...>& args) const {
    struct Ctx {
      void (*k)(P...);
      std::tuple<typename std::decay<P>::type...>* args;
    } ctx{k, &args};
    run(l, [](void* c) {
      Ctx* x = static_cast<Ctx*>(c);
      std::apply(x->k, *x->args);  // each thread gets its own copy of the parameters
    }, &ctx);
    if (tracing()) {
      double nums[sizeof...(P) + 1];
      numbers(args, nums, std::index_sequence_for<P...>{});
      traceWork(l, nums, (int)sizeof...(P));
    }
  }
  template <class Tuple, size_t... I>
  void checkPointers(const Tuple& t, std::index_sequence<I...>) const {
    (checkOne((int)I, std::get<I>(t)), ...);
  }
  template <class X>
  void checkOne(int i, const X& x) const {
    if constexpr (std::is_pointer<X>::value) checkArg(l, i, (const void*)x);
  }
  template <class Tuple, size_t... I>
  static void numbers(const Tuple& t, double* out, std::index_sequence<I...>) {
    ((out[I] = number(std::get<I>(t))), ...);
  }
  template <class X>
  static double number(const X& x) {
    if constexpr (std::is_pointer<X>::value) return x ? 1.0 : 0.0;
    else if constexpr (std::is_arithmetic<X>::value) return (double)x;
    else return NAN;
  }
};

template <class... P>
Launcher<P...> launch(const char* name, void (*k)(P...), dim3 grid, dim3 block, size_t smem = 0,
                      cudaStream_t stream = nullptr) {
  return Launcher<P...>{Launch{name, reinterpret_cast<const void*>(k), grid, block, smem, stream}, k};
}

}  // namespace cpt_sim

#define threadIdx (::cpt_sim::tlsCoords->threadIdx)
#define blockIdx (::cpt_sim::tlsCoords->blockIdx)
#define blockDim (::cpt_sim::tlsCoords->blockDim)
#define gridDim (::cpt_sim::tlsCoords->gridDim)

#define __syncthreads() ::cpt_sim::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) \
  ((void)::cpt_sim::warpCollective(__FILE__, __LINE__, ::cpt_sim::WarpOp::sync, (__VA_ARGS__ + 0u) ? (__VA_ARGS__ + 0u) : 0xffffffffu, 0, 0, 32))
#define CPT_SIM_SHFL(op, mask, v, arg, ...) \
  ::cpt_sim::shfl(__FILE__, __LINE__, ::cpt_sim::WarpOp::op, mask, v, arg, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32)
#define __shfl_sync(mask, v, src, ...) CPT_SIM_SHFL(shflIdx, mask, v, src, __VA_ARGS__)
#define __shfl_up_sync(mask, v, d, ...) CPT_SIM_SHFL(shflUp, mask, v, d, __VA_ARGS__)
#define __shfl_down_sync(mask, v, d, ...) CPT_SIM_SHFL(shflDown, mask, v, d, __VA_ARGS__)
#define __shfl_xor_sync(mask, v, m, ...) CPT_SIM_SHFL(shflXor, mask, v, m, __VA_ARGS__)
#define __ballot_sync(mask, p) \
  ((unsigned)::cpt_sim::warpCollective(__FILE__, __LINE__, ::cpt_sim::WarpOp::ballot, mask, (p) ? 1 : 0, 0, 32))
#define __any_sync(mask, p) \
  ((int)::cpt_sim::warpCollective(__FILE__, __LINE__, ::cpt_sim::WarpOp::any, mask, (p) ? 1 : 0, 0, 32))
#define __all_sync(mask, p) \
  ((int)::cpt_sim::warpCollective(__FILE__, __LINE__, ::cpt_sim::WarpOp::all, mask, (p) ? 1 : 0, 0, 32))

constexpr int warpSize = 32;

// ---- device math that CUDA has and the C library lacks (same results up to rounding: the GPU's
// expf/erff/rsqrtf differ from glibc's by a few ulp, one reason tolerances exist).
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
using std::isfinite;  // CUDA's is global; <cmath> leaves it in std
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
