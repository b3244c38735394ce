#include "kernel.h"
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma")
namespace cpt {
#define KFN microAvx2
#define VW 8
#define MR 6
#define NV 2
#define KFND microDirectAvx2
#define KLSE logSumExpAvx2
#define KEXP expAvx2
#define KROWMAX rowMaxAvx2
#define KEXPSUM expSumAvx2
#define KGELUPART geluPartAvx2
#define KGELU geluAvx2
#define KGELUBACK geluBackAvx2
#define KROWSUM rowSumAvx2
#define KLAYERNORM layerNormAvx2
#define KSUMSQ sumSquaresAvx2
#define KADAMW adamwAvx2
#include "micro.inc"
static const Kernel kAvx2 = {"avx2", MR, NV * VW, microAvx2, microDirectAvx2, rowMaxAvx2, expSumAvx2, logSumExpAvx2, geluAvx2, geluBackAvx2, sumSquaresAvx2, adamwAvx2, layerNormAvx2};
const Kernel* kernelAvx2() { return &kAvx2; }
}  // namespace cpt
#else
namespace cpt { const Kernel* kernelAvx2() { return nullptr; } }
#endif
