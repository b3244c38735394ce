#include "kernel.h"
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx512f,fma")
namespace cpt {
#define KFN microAvx512
#define VW 16
#define MR 12
#define NV 2
#define KFND microDirectAvx512
#define KLSE logSumExpAvx512
#define KEXP expAvx512
#define KROWMAX rowMaxAvx512
#define KEXPSUM expSumAvx512
#define KGELUPART geluPartAvx512
#define KGELU geluAvx512
#define KGELUBACK geluBackAvx512
#define KROWSUM rowSumAvx512
#define KLAYERNORM layerNormAvx512
#define KSUMSQ sumSquaresAvx512
#define KADAMW adamwAvx512
#include "micro.inc"
static const Kernel kAvx512 = {"avx512", MR, NV * VW, microAvx512, microDirectAvx512, rowMaxAvx512, expSumAvx512, logSumExpAvx512, geluAvx512, geluBackAvx512, sumSquaresAvx512, adamwAvx512, layerNormAvx512};
const Kernel* kernelAvx512() { return &kAvx512; }
}  // namespace cpt
#else
namespace cpt { const Kernel* kernelAvx512() { return nullptr; } }
#endif
