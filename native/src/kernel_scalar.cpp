#include "kernel.h"
namespace cpt {
#define KFN microScalar
#define VW 4
#define MR 4
#define NV 2
#define KFND microDirectScalar
#define KLSE logSumExpScalar
#define KEXP expScalar
#define KROWMAX rowMaxScalar
#define KEXPSUM expSumScalar
#define KGELUPART geluPartScalar
#define KGELU geluScalar
#define KGELUBACK geluBackScalar
#define KROWSUM rowSumScalar
#define KLAYERNORM layerNormScalar
#define KSUMSQ sumSquaresScalar
#define KADAMW adamwScalar
#include "micro.inc"
static const Kernel kScalar = {"scalar", MR, NV * VW, microScalar, microDirectScalar, rowMaxScalar, expSumScalar, logSumExpScalar, geluScalar, geluBackScalar, sumSquaresScalar, adamwScalar, layerNormScalar};
const Kernel* kernelScalar() { return &kScalar; }
}  // namespace cpt
