// Error checks shared by the CUDA engine's translation units: every failing CUDA or cuBLASLt call
// throws with the call, the file and the line.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "profile.h"

#include <stdexcept>
#include <string>

#define CUDA_CHECK(x)                                                                                     \
  do {                                                                                                    \
    cudaError_t e_ = (x);                                                                                 \
    if (e_ != cudaSuccess)                                                                                \
      throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(e_) + " in " + #x + " (" + \
                               __FILE__ + ":" + std::to_string(__LINE__) + ")");                          \
  } while (0)

#define LT_CHECK(x)                                                                                        \
  do {                                                                                                     \
    cublasStatus_t s_ = (x);                                                                               \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                                       \
      throw std::runtime_error(std::string("cuBLASLt error: ") + cublasLtGetStatusString(s_) + " in " + #x + \
                               " (" + __FILE__ + ":" + std::to_string(__LINE__) + ")");                    \
  } while (0)

// The stream a CPT_LAUNCH goes to: `cptStream()` as the call site sees it. The engine's member
// function names its own stream (what a CUDA graph captures); elsewhere this one, the legacy
// default stream.
inline cudaStream_t cptStream() { return nullptr; }
namespace cpt {
namespace cuda {
constexpr size_t smemOr0() { return 0; }
constexpr size_t smemOr0(size_t bytes) { return bytes; }
}  // namespace cuda
}  // namespace cpt

// Every kernel launch: <<<>>> under nvcc; with a host compiler the SIMT simulator runs it
// (native/cuda/sim), so the engine's code is the same on a GPU and in CI. The `for` runs the
// launch once inside a profile bracket (profile.h).
//   CPT_LAUNCH(kernel, grid, block[, sharedBytes])(args...)
#ifdef __CUDACC__
#define CPT_LAUNCH_RAW(kernel, grid, block, ...) \
  kernel<<<grid, block, ::cpt::cuda::smemOr0(__VA_ARGS__), cptStream()>>>
#else
#define CPT_LAUNCH_RAW(kernel, grid, block, ...) \
  ::cpt_sim::launch(#kernel, kernel, grid, block, ::cpt::cuda::smemOr0(__VA_ARGS__), cptStream())
#endif
#define CPT_LAUNCH(kernel, grid, block, ...)                                   \
  for (::cpt::cuda::profile::Scope prof_(#kernel, cptStream()); prof_.once();) \
  CPT_LAUNCH_RAW(kernel, grid, block, ##__VA_ARGS__)

// A kernel's dynamic shared memory (the launch's third argument) as `type* name`, 128-byte aligned.
#ifdef __CUDACC__
#define CPT_DYNAMIC_SMEM(type, name)                          \
  extern __shared__ __align__(128) unsigned char cptSmem_[]; \
  type* name = reinterpret_cast<type*>(cptSmem_)
#else
#define CPT_DYNAMIC_SMEM(type, name) type* name = static_cast<type*>(::cpt_sim::dynamicSmem())
#endif

// Kernel launches are checked right after they are queued (bad configuration) ...
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
