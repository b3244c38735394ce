#include <cstring>
#include "kernel.h"

namespace cpt {

static bool hasAvx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
static bool hasAvx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const Kernel* selectKernel(const char* name) {
  if (name == nullptr || *name == 0 || std::strcmp(name, "auto") == 0) {
    if (hasAvx512() && kernelAvx512()) return kernelAvx512();
    if (hasAvx2() && kernelAvx2()) return kernelAvx2();
    return kernelScalar();
  }
  if (std::strcmp(name, "scalar") == 0) return kernelScalar();
  if (std::strcmp(name, "avx2") == 0) return hasAvx2() ? kernelAvx2() : nullptr;
  if (std::strcmp(name, "avx512") == 0) return hasAvx512() ? kernelAvx512() : nullptr;
  return nullptr;
}

}  // namespace cpt
