#include "kernel.h"
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma")
namespace cpt {
#define KSUFFIX Avx2
#define KNAME "avx2"
#define VW 8
#define MR 6
#define NV 2
#include "micro.inc"
const Kernel* kernelAvx2() { return &kKernel; }
}  // namespace cpt
#else
namespace cpt { const Kernel* kernelAvx2() { return nullptr; } }
#endif
