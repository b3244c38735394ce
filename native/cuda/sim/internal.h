// cuda-sim internals shared by the runtime and the cuBLASLt stand-in.
#pragma once
#include <cstddef>
#include <string>

namespace cpt_sim {
// Empty when [p, p + bytes) lies inside one device allocation; else why not.
std::string deviceRange(const void* p, size_t bytes);
bool isDevice(const void* p);
bool planning();
// The launch trace: kernels (cuda_runtime.h), matmuls and copies, one JSON object per line.
bool tracing();
void trace(const std::string& json);
}  // namespace cpt_sim
