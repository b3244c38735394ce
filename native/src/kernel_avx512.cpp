#include "kernel.h"
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx512f,fma")
namespace cpt {
#define KSUFFIX Avx512
#define KNAME "avx512"
#define VW 16
#define MR 12
#define NV 2
#include "micro.inc"
const Kernel* kernelAvx512() { return &kKernel; }
}  // namespace cpt
#else
namespace cpt { const Kernel* kernelAvx512() { return nullptr; } }
#endif
