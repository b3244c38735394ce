// Checks of the simulator itself (run by test/cuda/sim.test.ts). Each prints name=pass|FAIL
// lines; the exit status is 0 only when all passed.
//   sim_check gemm [problems]   the simulated cuBLASLt (through the engine's Lt wrapper) against
//                               the CPU engine's GEMM: random shapes, transposes, leading
//                               dimensions, batch counts and strides, fp32 and bf16; bitwise repeatable
//   sim_check refuse            what cuBLASLt refuses: shapes that do not chain, ld below rows,
//                               unsupported types, broken alignment promises, another problem's
//                               algorithm, operands outside their allocation or in host memory
//   sim_check runtime           launch limits, pointer provenance, copies, poison, bf16 rounding
//   sim_check simt              shuffles, ballots and barriers, and the errors for divergence
//   sim_check mma               ldmatrix and mma.sync (the attention's fragment loads and products,
//                               fragments.cuh) against a scalar product, what ldmatrix refuses and
//                               its bank conflicts;
//                               cp.async landing at its wait (the default), and what it refuses
//                               ex2 (ex2.approx.ftz.f32): its limits and flushed subnormals
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../../src/gemm.h"
#include "../../src/kernel.h"
#include "../common.h"
#include "../fragments.cuh"
#include "../gemm.h"
#include "cpt_sim.h"
#include "cuda_bf16.h"
#include "mma.h"

namespace {

int failures = 0;
void report(const std::string& name, bool ok, const std::string& why = "") {
  std::printf("%s=%s%s%s\n", name.c_str(), ok ? "pass" : "FAIL", ok || why.empty() ? "" : " ", ok ? "" : why.c_str());
  failures += !ok;
}
// Runs f and returns the message of what it threw ("" when nothing).
std::string thrown(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

template <class T>
T* dev(size_t n) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  return (T*)p;
}

float bf16round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// ---- gemm
int gemm(int problems) {
  std::mt19937 rng(2024);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::normal_distribution<float> nd(0.f, 1.f);
  const cpt::Kernel* k = cpt::selectKernel("auto");
  cpt::Gemm cpu(k, 1);
  cpt::cuda::Lt lt;
  double worst = 0;
  bool ok = true, repeat = true;
  for (int t = 0; t < problems; t++) {
    const bool ta = uni(0, 1), tb = uni(0, 1), bf = uni(0, 2) == 0, bfOut = bf && uni(0, 1);
    const int M = uni(1, 70), N = uni(1, 70), K = uni(1, 90), batch = uni(1, 3);
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;  // row-major stored shapes
    const int lda = ac + uni(0, 5), ldb = bc + uni(0, 5), ldc = N + uni(0, 5);
    const long long sa = (long long)ar * lda + uni(0, 9), sb = (long long)br * ldb + uni(0, 9);
    const long long sc = (long long)M * ldc + uni(0, 9);
    const float alpha = uni(0, 1) ? 1.f : 0.75f, beta = (float)uni(0, 2) * 0.5f;
    const size_t na = (size_t)sa * batch, nb = (size_t)sb * batch, nc = (size_t)sc * batch;
    std::vector<float> A(na), B(nb), C(nc);
    for (float& x : A) x = bf ? bf16round(nd(rng)) : nd(rng);
    for (float& x : B) x = bf ? bf16round(nd(rng)) : nd(rng);
    for (float& x : C) x = bfOut ? bf16round(nd(rng)) : nd(rng);
    // Device copies in the operand types.
    auto upload = [&](const std::vector<float>& h, bool b16) {
      void* d = nullptr;
      CUDA_CHECK(cudaMalloc(&d, h.size() * (b16 ? 2 : 4)));
      if (b16) {
        std::vector<__nv_bfloat16> x(h.size());
        for (size_t i = 0; i < h.size(); i++) x[i] = __float2bfloat16_rn(h[i]);
        CUDA_CHECK(cudaMemcpy(d, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
      } else {
        CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
      }
      return d;
    };
    void *dA = upload(A, bf), *dB = upload(B, bf);
    std::vector<float> outs[2];
    for (int rep = 0; rep < 2; rep++) {
      void* dC = upload(C, bfOut);
      lt.gemm(ta, tb, M, N, K, alpha, cpt::cuda::Mat{dA, lda, sa}, cpt::cuda::Mat{dB, ldb, sb}, beta, dC, ldc, sc, batch,
              bf ? CUDA_R_16BF : CUDA_R_32F, bfOut ? CUDA_R_16BF : CUDA_R_32F);
      std::vector<float>& out = outs[rep];
      out.resize(nc);
      if (bfOut) {
        std::vector<__nv_bfloat16> x(nc);
        CUDA_CHECK(cudaMemcpy(x.data(), dC, nc * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < nc; i++) out[i] = __bfloat162float(x[i]);
      } else {
        CUDA_CHECK(cudaMemcpy(out.data(), dC, nc * 4, cudaMemcpyDeviceToHost));
      }
      CUDA_CHECK(cudaFree(dC));
    }
    repeat &= std::memcmp(outs[0].data(), outs[1].data(), nc * 4) == 0;
    // Reference: the CPU engine's GEMM per batch entry, then alpha and beta; elements between
    // the rows (ld padding) and between batch entries must be untouched.
    std::vector<float> P((size_t)M * N);
    for (int b = 0; b < batch; b++) {
      cpu.st(0, ta, tb, M, N, K, A.data() + b * sa, lda, B.data() + b * sb, ldb, P.data(), N, false);
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          const size_t at = (size_t)b * sc + (size_t)i * ldc + j;
          const double want = (double)alpha * P[(size_t)i * N + j] + (beta != 0 ? (double)beta * C[at] : 0.0);
          const double tol = bfOut ? 1e-2 * (1 + std::fabs(want)) : 1e-5 * std::sqrt((double)K) * (1 + std::fabs(want));
          const double err = std::fabs(outs[0][at] - want);
          worst = std::max(worst, err / (1 + std::fabs(want)));
          if (!(err <= tol)) {
            if (ok)
              std::printf("  problem %d (ta %d tb %d M %d N %d K %d batch %d %s): [%d][%d][%d] %.7g vs %.7g\n", t, ta, tb, M,
                          N, K, batch, bf ? (bfOut ? "bf16->bf16" : "bf16->fp32") : "fp32", b, i, j, outs[0][at], want);
            ok = false;
          }
        }
      for (int i = 0; i < M; i++)
        for (int j = N; j < ldc && (size_t)b * sc + (size_t)i * ldc + j < nc; j++) {
          const size_t at = (size_t)b * sc + (size_t)i * ldc + j;
          if (outs[0][at] != C[at]) ok = false;
        }
    }
    CUDA_CHECK(cudaFree(dA));
    CUDA_CHECK(cudaFree(dB));
  }
  std::printf("gemm_problems=%d\ngemm_worst_rel_err=%.3g\n", problems, worst);
  report("gemm_vs_cpu", ok);
  report("gemm_bitwise_repeat", repeat);
  return failures ? 1 : 0;
}

// ---- refusals of the simulated cuBLASLt
struct Problem {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t l[4] = {};
  cublasLtMatmulPreference_t pref = nullptr;
  ~Problem() {
    for (auto* x : l)
      if (x) cublasLtMatrixLayoutDestroy(x);
    if (op) cublasLtMatmulDescDestroy(op);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
  }
};
// Column-major D[m x n] = A[m x k] B[k x n] with the given layouts' rows, cols and lds.
void make(Problem& p, cudaDataType_t ab, cudaDataType_t cd, uint64_t am, uint64_t ak, uint64_t bk, uint64_t bn, uint64_t m,
          uint64_t n, int64_t lda, uint32_t alignA = 256) {
  cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  cublasLtMatrixLayoutCreate(&p.l[0], ab, am, ak, lda);
  cublasLtMatrixLayoutCreate(&p.l[1], ab, bk, bn, bk);
  cublasLtMatrixLayoutCreate(&p.l[2], cd, m, n, m);
  cublasLtMatrixLayoutCreate(&p.l[3], cd, m, n, m);
  cublasLtMatmulPreferenceCreate(&p.pref);
  cublasLtMatmulPreferenceSetAttribute(p.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA, sizeof alignA);
}

int refuse() {
  cublasLtHandle_t h;
  cublasLtCreate(&h);
  cublasLtMatmulHeuristicResult_t r;
  int found = 0;
  auto heuristic = [&](Problem& p) { return cublasLtMatmulAlgoGetHeuristic(h, p.op, p.l[0], p.l[1], p.l[2], p.l[3], p.pref, 1, &r, &found); };
  {
    Problem p;
    make(p, CUDA_R_32F, CUDA_R_32F, 8, 4, 5, 6, 8, 6, 8);  // A has k 4, B has k 5
    const cublasStatus_t s = heuristic(p);
    report("refuse_k_mismatch", s == CUBLAS_STATUS_INVALID_VALUE && has(cublasLtGetStatusString(s), "do not chain"));
  }
  {
    Problem p;
    make(p, CUDA_R_32F, CUDA_R_32F, 8, 4, 4, 6, 8, 6, 7);  // lda 7 < 8 rows
    const cublasStatus_t s = heuristic(p);
    report("refuse_ld_below_rows", s == CUBLAS_STATUS_INVALID_VALUE && has(cublasLtGetStatusString(s), "leading dimension"));
  }
  {
    Problem p;
    make(p, CUDA_R_16F, CUDA_R_32F, 8, 4, 4, 6, 8, 6, 8);
    report("refuse_unsupported_types", heuristic(p) == CUBLAS_STATUS_NOT_SUPPORTED);
  }
  // A problem that is valid, for the run-time refusals.
  const int m = 8, k = 4, n = 6;
  float* A = dev<float>(m * k + 1);
  float* B = dev<float>(k * n);
  float* D = dev<float>(m * n);
  const float one = 1.f, zero = 0.f;
  {
    Problem p;
    make(p, CUDA_R_32F, CUDA_R_32F, m, k, k, n, m, n, m, 16);
    const bool got = heuristic(p) == CUBLAS_STATUS_SUCCESS && found == 1;
    const cublasStatus_t ok = cublasLtMatmul(h, p.op, &one, A, p.l[0], B, p.l[1], &zero, D, p.l[2], D, p.l[3], &r.algo, nullptr, 0, nullptr);
    report("valid_problem_runs", got && ok == CUBLAS_STATUS_SUCCESS, cublasLtGetStatusString(ok));
    const cublasStatus_t mis = cublasLtMatmul(h, p.op, &one, A + 1, p.l[0], B, p.l[1], &zero, D, p.l[2], D, p.l[3], &r.algo, nullptr, 0, nullptr);
    report("refuse_broken_alignment_promise", mis == CUBLAS_STATUS_INVALID_VALUE && has(cublasLtGetStatusString(mis), "aligned"));
    std::vector<float> host(m * k);
    const cublasStatus_t hp = cublasLtMatmul(h, p.op, &one, host.data(), p.l[0], B, p.l[1], &zero, D, p.l[2], D, p.l[3], &r.algo, nullptr, 0, nullptr);
    report("refuse_host_operand", hp != CUBLAS_STATUS_SUCCESS && has(cublasLtGetStatusString(hp), "not device memory"));
    Problem q;
    make(q, CUDA_R_32F, CUDA_R_32F, m, k, k, n, m, n, m + 4, 16);  // another lda: another problem
    const cublasStatus_t other = cublasLtMatmul(h, q.op, &one, A, q.l[0], B, q.l[1], &zero, D, q.l[2], D, q.l[3], &r.algo, nullptr, 0, nullptr);
    report("refuse_algo_of_another_problem", other == CUBLAS_STATUS_INVALID_VALUE && has(cublasLtGetStatusString(other), "another problem"));
  }
  {
    Problem p;  // lda m + 4 over an allocation sized for lda m: A runs past its end
    make(p, CUDA_R_32F, CUDA_R_32F, m, k, k, n, m, n, m + 4, 4);
    heuristic(p);
    const cublasStatus_t s = cublasLtMatmul(h, p.op, &one, A, p.l[0], B, p.l[1], &zero, D, p.l[2], D, p.l[3], &r.algo, nullptr, 0, nullptr);
    report("refuse_operand_past_allocation", s != CUBLAS_STATUS_SUCCESS && has(cublasLtGetStatusString(s), "past the end"));
  }
  cudaFree(A), cudaFree(B), cudaFree(D);
  cublasLtDestroy(h);
  return failures ? 1 : 0;
}

// ---- runtime
__global__ void fillKernel(float* x, int n, float v) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = v;
}
__global__ void smemKernel(float* out) {
  float* s = (float*)cpt_sim::dynamicSmem();
  s[threadIdx.x] = (float)threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}
__global__ void readKernel(const float* x, float* out, int at) {
  if (threadIdx.x == 0) out[0] = x[at];
}

bool launchError(cudaError_t want, const std::function<void()>& launch) {
  cudaGetLastError();
  launch();
  return cudaGetLastError() == want;
}

int runtime() {
  float* x = dev<float>(1000);
  report("limit_threads_per_block", launchError(cudaErrorInvalidConfiguration, [&] { CPT_LAUNCH(fillKernel, 1, 1025)(x, 1000, 1.f); }));
  report("limit_block_z", launchError(cudaErrorInvalidConfiguration, [&] { CPT_LAUNCH(fillKernel, 1, dim3(1, 1, 65))(x, 1000, 1.f); }));
  report("limit_grid_y", launchError(cudaErrorInvalidConfiguration, [&] { CPT_LAUNCH(fillKernel, dim3(1, 65536), 32)(x, 1000, 1.f); }));
  report("limit_empty_grid", launchError(cudaErrorInvalidConfiguration, [&] { CPT_LAUNCH(fillKernel, 0, 32)(x, 1000, 1.f); }));
  report("limit_smem_without_optin", launchError(cudaErrorInvalidValue, [&] { CPT_LAUNCH(smemKernel, 1, 32, (48 << 10) + 4)(x); }));
  report("limit_smem_optin_max", cudaFuncSetAttribute(smemKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 << 10) == cudaErrorInvalidValue);
  cudaGetLastError();
  const bool optin = cudaFuncSetAttribute(smemKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 << 10) == cudaSuccess;
  report("limit_smem_with_optin", optin && launchError(cudaSuccess, [&] { CPT_LAUNCH(smemKernel, 1, 64, 100 << 10)(x); }));
  std::vector<float> h(1000);
  CUDA_CHECK(cudaMemcpy(h.data(), x, 64 * 4, cudaMemcpyDeviceToHost));
  bool rev = true;
  for (int i = 0; i < 64; i++) rev &= h[i] == (float)(63 - i);
  report("dynamic_smem_shared_by_block", rev);
  report("host_pointer_argument", has(thrown([&] { CPT_LAUNCH(fillKernel, 1, 32)(h.data(), 10, 1.f); }), "not a device pointer"));
  report("memcpy_host_as_device", cudaMemcpy(h.data(), x, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  report("memcpy_past_end", cudaMemcpy(x, h.data(), 1001 * 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue &&
                                 has(cudaGetErrorString(cudaErrorInvalidValue), "past the end"));
  // Poison: each allocation its own NaN (fp32 and bf16) pattern.
  float* y = dev<float>(16);
  uint32_t px, py;
  CUDA_CHECK(cudaMemcpy(&py, y, 4, cudaMemcpyDeviceToHost));
  float* z = dev<float>(16);
  CUDA_CHECK(cudaMemcpy(&px, z, 4, cudaMemcpyDeviceToHost));
  float fy;
  std::memcpy(&fy, &py, 4);
  __nv_bfloat16 by;
  std::memcpy(&by, &py, 2);
  report("poison_distinct_nan", px != py && std::isnan(fy) && std::isnan(__bfloat162float(by)));
  // 64 floats past the end of 16: past the 256-byte slack, in the guard page.
  report("out_of_bounds_read_faults", has(thrown([&] { CPT_LAUNCH(readKernel, 1, 32)(y, z, 16 + 64); }), "out-of-bounds"));
  // bf16 rounding: ties to even, NaN kept, overflow to infinity.
  const float t1 = 1.f + std::ldexp(1.f, -8), t2 = 1.f + 3 * std::ldexp(1.f, -8);
  report("bf16_round_nearest_even", bf16round(t1) == 1.f && bf16round(t2) == 1.f + std::ldexp(1.f, -6) &&
                                        std::isnan(bf16round(NAN)) && std::isinf(bf16round(3.4e38f)) &&
                                        bf16round(1.f + std::ldexp(1.f, -7)) == 1.f + std::ldexp(1.f, -7));
  // Memory cap and plan mode.
  size_t cur, peak, lim;
  cpt_sim_memory(&cur, &peak, &lim);
  cpt_sim_set_mem_limit(cur + (1 << 20));
  void* big = nullptr;
  report("memory_cap", cudaMalloc(&big, 2 << 20) == cudaErrorMemoryAllocation);
  cpt_sim_set_mem_limit(lim);
  cpt_sim_set_plan(1);
  void* huge = nullptr;
  const bool reserved = cudaMalloc(&huge, (size_t)40 << 30) == cudaSuccess;
  cpt_sim_memory(&cur, &peak, &lim);
  report("plan_mode_reserves_without_pages", reserved && peak >= ((size_t)40 << 30) && cudaFree(huge) == cudaSuccess);
  cpt_sim_set_plan(0);
  // Stream capture: recorded, not run, until the graph launches (and again at each launch); a
  // synchronous copy or work on the legacy stream during it fails and invalidates it.
  {
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreate(&st));
    float one = 0, got = -1;
    CUDA_CHECK(cudaMemset(x, 0, 4));
    cudaGraph_t g = nullptr;
    cudaGraphExec_t ge = nullptr;
    bool ok = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
    cpt_sim::launch("fillKernel", fillKernel, 1, 32, 0, st)(x, 1, 7.f);
    ok &= cudaMemsetAsync(x + 1, 0, 4, st) == cudaSuccess;
    ok &= cudaStreamEndCapture(st, &g) == cudaSuccess && g;
    CUDA_CHECK(cudaMemcpy(&got, x, 4, cudaMemcpyDeviceToHost));
    ok &= got == 0.f;  // recorded only
    ok &= cudaGraphInstantiateWithFlags(&ge, g, 0) == cudaSuccess && cudaGraphLaunch(ge, st) == cudaSuccess;
    CUDA_CHECK(cudaMemcpy(&got, x, 4, cudaMemcpyDeviceToHost));
    ok &= got == 7.f;
    CUDA_CHECK(cudaMemset(x, 0, 4));
    ok &= cudaGraphLaunch(ge, st) == cudaSuccess;
    CUDA_CHECK(cudaMemcpy(&got, x, 4, cudaMemcpyDeviceToHost));
    report("capture_records_and_replays", ok && got == 7.f);
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    const bool syncRefused = cudaMemcpy(&one, x, 4, cudaMemcpyDeviceToHost) == cudaErrorStreamCaptureUnsupported;
    report("capture_refuses_sync_copy", syncRefused && cudaStreamEndCapture(st, &g) == cudaErrorStreamCaptureInvalidated && !g);
    cudaGetLastError();
    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    const bool legacy = launchError(cudaErrorStreamCaptureImplicit, [&] { CPT_LAUNCH(fillKernel, 1, 32)(x, 1, 5.f); });
    report("capture_refuses_legacy_stream", legacy && cudaStreamEndCapture(st, &g) == cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
    CUDA_CHECK(cudaMemcpy(&got, x, 4, cudaMemcpyDeviceToHost));
    report("capture_refused_work_not_run", got == 7.f);  // the refused launch wrote no 5
    CUDA_CHECK(cudaStreamDestroy(st));
  }
  // Last: one element past the end lands in the slack, found by the canaries after the launch
  // (and after every launch from then on).
  report("slack_write_detected", has(thrown([&] { CPT_LAUNCH(fillKernel, 1, 32)(y, 17, 1.f); }), "past the end"));
  return failures ? 1 : 0;
}

// ---- SIMT semantics
__global__ void shuffleKernel(int* out) {
  const int l = threadIdx.x & 31;
  int v = l * 10;
  out[threadIdx.x * 6 + 0] = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x * 6 + 1] = __shfl_down_sync(0xffffffffu, v, 3);
  out[threadIdx.x * 6 + 2] = __shfl_up_sync(0xffffffffu, v, 2, 8);
  out[threadIdx.x * 6 + 3] = __shfl_sync(0xffffffffu, v, 5);
  out[threadIdx.x * 6 + 4] = (int)__ballot_sync(0xffffffffu, l % 3 == 0);
  out[threadIdx.x * 6 + 5] = __all_sync(0xffffffffu, l < 32) + 2 * __any_sync(0xffffffffu, l == 7);
}
__global__ void divergentShuffle(float* out) {
  float v = 1.f;
  if ((threadIdx.x & 31) < 16) v += __shfl_xor_sync(0xffffffffu, v, 1);
  __syncthreads();
  out[threadIdx.x] = v;
}
__global__ void halfWarpShuffle(float* out) {  // partial masks used correctly
  float v = (float)threadIdx.x;
  if ((threadIdx.x & 31) < 16) v += __shfl_xor_sync(0x0000ffffu, v, 1);
  else v += __shfl_xor_sync(0xffff0000u, v, 2);
  out[threadIdx.x] = v;
}
__global__ void divergentBarrier(float* out) {
  if (threadIdx.x < 40) __syncthreads();
  out[threadIdx.x] = 1.f;
}
__global__ void twoBarriers(float* out) {
  if (threadIdx.x < 32) __syncthreads();
  else __syncthreads();
  out[threadIdx.x] = 1.f;
}
__global__ void earlyExitBarrier(float* out, int n) {
  if ((int)threadIdx.x >= n) return;
  __syncthreads();
  out[threadIdx.x] = 1.f;
}
__global__ void laneOutsideMask(float* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, 1.f, 0);
}

int simt() {
  int* o = dev<int>(64 * 6);
  CPT_LAUNCH(shuffleKernel, 1, 64)(o);
  std::vector<int> h(64 * 6);
  CUDA_CHECK(cudaMemcpy(h.data(), o, h.size() * 4, cudaMemcpyDeviceToHost));
  bool ok = true;
  for (int t = 0; t < 64; t++) {
    const int l = t & 31;
    unsigned ballot = 0;
    for (int q = 0; q < 32; q++) ballot |= (q % 3 == 0 ? 1u : 0u) << q;
    ok &= h[t * 6 + 0] == (l ^ 1) * 10;
    ok &= h[t * 6 + 1] == (l + 3 < 32 ? l + 3 : l) * 10;
    ok &= h[t * 6 + 2] == ((l & 7) >= 2 ? l - 2 : l) * 10;
    ok &= h[t * 6 + 3] == 50;
    ok &= (unsigned)h[t * 6 + 4] == ballot;
    ok &= h[t * 6 + 5] == 3;
  }
  report("shuffles_ballot_all_any", ok);
  float* f = dev<float>(128);
  CPT_LAUNCH(halfWarpShuffle, 1, 64)(f);
  std::vector<float> hf(64);
  CUDA_CHECK(cudaMemcpy(hf.data(), f, 64 * 4, cudaMemcpyDeviceToHost));
  bool half = true;
  for (int t = 0; t < 64; t++) half &= hf[t] == (float)t + (float)((t & 31) < 16 ? (t ^ 1) : (t ^ 2));
  report("partial_masks", half);
  const std::string ds = thrown([&] { CPT_LAUNCH(divergentShuffle, 1, 64)(f); });
  report("divergent_shuffle_detected", has(ds, "warp-divergent __shfl_xor_sync"), ds);
  const std::string db = thrown([&] { CPT_LAUNCH(divergentBarrier, 1, 64)(f); });
  report("divergent_barrier_detected", has(db, "not reached by every thread"), db);
  report("different_barriers_detected", has(thrown([&] { CPT_LAUNCH(twoBarriers, 1, 64)(f); }), "different __syncthreads"));
  report("exited_threads_at_barrier_detected", has(thrown([&] { CPT_LAUNCH(earlyExitBarrier, 1, 64)(f, 50); }), "not reached by every thread"));
  report("uniform_early_exit_ok", thrown([&] { CPT_LAUNCH(earlyExitBarrier, 1, 64)(f, 64); }).empty());
  report("lane_outside_mask_detected", has(thrown([&] { CPT_LAUNCH(laneOutsideMask, 1, 32)(f); }), "leaves out its own lane"));
  return failures ? 1 : 0;
}

// ---- mma: A [16][16] and a tile T [16][16] (bf16, rows of 24) copied to shared memory, then
// through the attention's fragment loads (ldmatrix) and mma.sync: D1 = A T (fragB: the depth down
// T's rows), D2 = A T^T (fragBt), written out row-major from PTX's accumulator layout.
namespace cc = cpt::cuda;
__global__ void mmaFragments(const __nv_bfloat16* A, const __nv_bfloat16* T, float* D1, float* D2) {
  CPT_DYNAMIC_SMEM(__nv_bfloat16, s);
  for (int i = threadIdx.x; i < 2 * 16 * 24; i += blockDim.x) s[i] = i < 16 * 24 ? A[i] : T[i - 16 * 24];
  __syncthreads();
  uint32_t a[4], b[4];
  float d[4][4] = {};  // D1's two 8-column tiles, then D2's
  cc::fragA(a, s, 24);
  cc::fragB(b, s + 16 * 24, 24), cc::mma2(d[0], d[1], a, b);
  cc::fragBt(b, s + 16 * 24, 24), cc::mma2(d[2], d[3], a, b);
  const int g = threadIdx.x >> 2, c2 = 2 * (threadIdx.x & 3);
  for (int t = 0; t < 4; t++) {
    float* D = t < 2 ? D1 : D2;
    for (int i = 0; i < 4; i++) D[(g + (i >> 1) * 8) * 16 + (t & 1) * 8 + c2 + (i & 1)] = d[t][i];
  }
}
// offset 1: a row address off its 16-byte alignment; offset -1: rows in global memory; half:
// only lanes 0-15 load.
__global__ void ldmatrixMisused(const __nv_bfloat16* A, int offset, int half) {
  CPT_DYNAMIC_SMEM(__nv_bfloat16, s);
  uint32_t r[4];
  if (half && (threadIdx.x & 31) >= 16) return;
  cc::ldsm4<false>(r, offset < 0 ? A + (threadIdx.x & 31) * 8 : s + (threadIdx.x & 31) * 8 + offset);
}

// cp.async of 16 bytes into shared memory (at element `offset`, or to global memory `g`), read
// back before and after the wait.
__global__ void cpAsyncRead(const __nv_bfloat16* src, float* out, int offset, __nv_bfloat16* g) {
  CPT_DYNAMIC_SMEM(__nv_bfloat16, s);
  if (threadIdx.x) return;
  for (int i = 0; i < 16; i++) s[i] = __float2bfloat16_rn(-1.f);
  cc::cpAsync16(g ? g : s + offset, src);
  cc::cpAsyncCommit();
  out[0] = __bfloat162float(s[0]);
  cc::cpAsyncWait<0>();
  out[1] = __bfloat162float(s[0]);
}

// ex2 (PTX ex2.approx.ftz.f32) on the values where its flushing and limits show.
__global__ void ex2Values(const float* in, float* out, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = cc::ex2(in[i]);
}

int mma() {
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<__nv_bfloat16> ha(16 * 24), ht(16 * 24);
  for (auto* h : {&ha, &ht})
    for (auto& x : *h) x = __float2bfloat16_rn(u(rng));
  auto* A = dev<__nv_bfloat16>(ha.size());
  auto* T = dev<__nv_bfloat16>(ht.size());
  float *D1 = dev<float>(256), *D2 = dev<float>(256);
  CUDA_CHECK(cudaMemcpy(A, ha.data(), ha.size() * 2, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(T, ht.data(), ht.size() * 2, cudaMemcpyHostToDevice));
  CPT_LAUNCH(mmaFragments, 1, 32, 2 * 16 * 24 * 2)(A, T, D1, D2);
  std::vector<float> d1(256), d2(256);
  CUDA_CHECK(cudaMemcpy(d1.data(), D1, 256 * 4, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(d2.data(), D2, 256 * 4, cudaMemcpyDeviceToHost));
  const auto f = [](__nv_bfloat16 x) { return (double)__bfloat162float(x); };
  bool ok1 = true, ok2 = true;
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      double w1 = 0, w2 = 0;
      for (int k = 0; k < 16; k++) w1 += f(ha[i * 24 + k]) * f(ht[k * 24 + j]), w2 += f(ha[i * 24 + k]) * f(ht[j * 24 + k]);
      ok1 &= std::fabs(d1[i * 16 + j] - w1) <= 1e-5 * (1 + std::fabs(w1));
      ok2 &= std::fabs(d2[i * 16 + j] - w2) <= 1e-5 * (1 + std::fabs(w2));
    }
  report("mma_ldmatrix_trans_product", ok1);
  report("mma_ldmatrix_product", ok2);
  report("ldmatrix_misaligned_refused", has(thrown([&] { CPT_LAUNCH(ldmatrixMisused, 1, 32, 1024)(A, 1, 0); }), "16-byte aligned"));
  report("ldmatrix_global_refused", has(thrown([&] { CPT_LAUNCH(ldmatrixMisused, 1, 32, 1024)(A, -1, 0); }), "shared memory"));
  report("ldmatrix_half_warp_detected", !thrown([&] { CPT_LAUNCH(ldmatrixMisused, 1, 32, 1024)(A, 0, 1); }).empty());
  {  // its bank conflicts, as fragA's 32 row addresses fall in a tile of row length ld (elements):
     // 144 bytes apart (the attention's padding at 64) one wavefront a matrix, 160 two, 128 eight
    alignas(128) static uint16_t tile[16 * 80];
    const auto waves = [](int ld) {
      const uint16_t* rows[32];
      for (int l = 0; l < 32; l++) rows[l] = tile + (l & 15) * ld + (l >> 4) * 8;
      return cpt_sim::ldmatrixWavefronts(rows);
    };
    report("ldmatrix_bank_conflicts_counted", waves(72) == 4 && waves(80) == 8 && waves(64) == 32,
           std::to_string(waves(72)) + ", " + std::to_string(waves(80)) + ", " + std::to_string(waves(64)) + " wavefronts");
  }
  CPT_LAUNCH(cpAsyncRead, 1, 32, 64)(A, D1, 0, nullptr);
  float seen[2];
  CUDA_CHECK(cudaMemcpy(seen, D1, 8, cudaMemcpyDeviceToHost));
  report("cp_async_lands_at_wait", seen[0] == -1.f && seen[1] == (float)f(ha[0]),
         "read " + std::to_string(seen[0]) + " before the wait, " + std::to_string(seen[1]) + " after");
  report("cp_async_misaligned_refused", has(thrown([&] { CPT_LAUNCH(cpAsyncRead, 1, 32, 64)(A, D1, 1, nullptr); }), "aligned"));
  report("cp_async_to_global_refused", has(thrown([&] { CPT_LAUNCH(cpAsyncRead, 1, 32, 64)(A, D1, 0, T); }), "shared memory"));
  {  // 2^-inf = +0 (the masked scores' probability), a subnormal input read as 0, a subnormal result flushed
    const float in[8] = {-INFINITY, 0.f, 1e-40f, -126.f, -127.f, 3.f, INFINITY, NAN};
    const float want[8] = {0.f, 1.f, 1.f, 0x1p-126f, 0.f, 8.f, INFINITY, NAN};
    CUDA_CHECK(cudaMemcpy(D1, in, sizeof in, cudaMemcpyHostToDevice));
    CPT_LAUNCH(ex2Values, 1, 32)(D1, D2, 8);
    float got[8];
    CUDA_CHECK(cudaMemcpy(got, D2, sizeof got, cudaMemcpyDeviceToHost));
    bool ok = !std::signbit(got[0]) && std::isnan(got[7]);
    for (int i = 0; i < 7; i++) ok &= got[i] == want[i];
    report("ex2_flushes_subnormals", ok);
  }
  cudaFree(A), cudaFree(T), cudaFree(D1), cudaFree(D2);
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "gemm") return gemm(argc > 2 ? std::atoi(argv[2]) : 300);
    if (cmd == "refuse") return refuse();
    if (cmd == "runtime") return runtime();
    if (cmd == "simt") return simt();
    if (cmd == "mma") return mma();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sim_check %s: %s\n", cmd.c_str(), e.what());
    return 2;
  }
  std::fprintf(stderr, "usage: sim_check gemm [problems] | refuse | runtime | simt | mma\n");
  return 2;
}
