// Where a training step's GPU time goes, measured: while a profile is on (cpt_cuda_profile_start),
// every kernel launch and cuBLASLt product is bracketed by CUDA events and named as the
// performance model (scripts/model-cuda.ts) names it, so the two line up. Off, it costs one
// branch per launch. Events on the launch's stream.
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace cpt {
namespace cuda {
namespace profile {

extern bool active;
void begin(const char* what, cudaStream_t s);
void end() noexcept;
void start();  // clears what an earlier profile recorded
// Stops, waits for the GPU; one line per name: "what\tlaunches\tmilliseconds" (totals).
std::string stop();

// One launch's bracket, for CPT_LAUNCH's `for` (common.h): true once, then the end event.
class Scope {
 public:
  Scope(const char* what, cudaStream_t s) : on_(active) {
    if (on_) begin(what, s);
  }
  ~Scope() {
    if (on_) end();
  }
  bool once() {
    const bool first = first_;
    first_ = false;
    return first;
  }

 private:
  bool on_, first_ = true;
};

}  // namespace profile
}  // namespace cuda
}  // namespace cpt
