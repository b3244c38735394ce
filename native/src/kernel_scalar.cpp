#include "kernel.h"
namespace cpt {
#define KSUFFIX Scalar
#define KNAME "scalar"
#define VW 4
#define MR 4
#define NV 2
#include "micro.inc"
const Kernel* kernelScalar() { return &kKernel; }
}  // namespace cpt
