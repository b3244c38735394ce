// SGEMM micro-kernels. Each variant lives in its own translation unit compiled for its ISA
// (#pragma GCC target), and is picked at run time from what the CPU supports.
#pragma once

namespace cpt {

// C[m x n] (= or +=) Ap[kc x MR panel] * Bp[kc x NR panel]; m <= MR, n <= NR; panels are
// zero-padded, 64-byte aligned; C is row-major with leading dimension ldc. bias (n values, or
// null; only without acc): C = bias + the product, rounded once, as C = bias; C += product gives.
typedef void (*MicroFn)(int kc, const float* Ap, const float* Bp, float* C, int ldc, int m, int n, int acc,
                        const float* bias);

// Full MR x NR tile with A read in place from row-major storage (lda), B packed.
typedef void (*MicroDirectFn)(int kc, const float* A, int lda, const float* Bp, float* C, int ldc, int n, int acc,
                              const float* bias);

// Row-wise fused kernels that pay to vectorise (same ISA as the GEMM).
struct Kernel {
  const char* name;
  int mr, nr;
  MicroFn micro;
  MicroDirectFn microDirect;
  float (*rowMax)(const float* x, int n);
  // x[j] = exp(x[j] - shift) when store, and returns sum_j exp(x[j] - shift) (lanes summed in a
  // fixed order: deterministic). Polynomial exp, relative error ~2e-7.
  float (*expSum)(float* x, int n, float shift, int store);
  float (*logSumExp)(const float* x, int n);
  // y[i] = gelu(x[i]), exact (erf) or tanh form; d[i] *= gelu'(x[i]). Relative error ~1e-6.
  void (*gelu)(const float* x, float* y, long n, int exact);
  void (*geluBack)(const float* x, float* d, long n, int exact);
  // Sum of squares (float lanes in 256-element blocks, added in double); AdamW over a run of
  // parameters with one decay (engine.cpp's applyAdamW gives the coefficients).
  double (*sumSquares)(const float* x, long n);
  void (*adamw)(float* w, float* g, float* m, float* v, long n, float coef, float b1, float b2, float eps, float stepSize,
                float bc2s, float decay);
  // One row of layer norm over n: y = (x - mean) * rstd * w + b; mean and rstd returned.
  void (*layerNorm)(const float* x, const float* w, const float* b, float* y, int n, float eps, float* mean, float* rstd);
};

const Kernel* kernelScalar();   // baseline (SSE2 on x86-64, whatever the compiler targets elsewhere)
const Kernel* kernelAvx2();     // null when not compiled in
const Kernel* kernelAvx512();   // null when not compiled in

// Best kernel this CPU supports, or the one named ("scalar", "avx2", "avx512"); null if unknown
// or unsupported.
const Kernel* selectKernel(const char* name);

}  // namespace cpt
