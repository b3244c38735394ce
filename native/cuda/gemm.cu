#include "gemm.h"

#include <algorithm>
#include <cstdint>

#include "common.h"

namespace cpt {
namespace cuda {

namespace {
// Largest power of two (up to 256) that divides the address and the byte distances the layout
// steps by: what cuBLASLt may assume about a pointer's alignment.
int alignment(const void* p, int ld, long long stride, int batch, size_t esize) {
  uint64_t x = (uint64_t)(uintptr_t)p | (uint64_t)ld * esize | 256;
  if (batch > 1) x |= (uint64_t)stride * esize;
  return (int)(x & (~x + 1));
}
size_t esize(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }
}  // namespace

Lt::Lt() {
  LT_CHECK(cublasLtCreate(&h_));
  wsSize_ = (size_t)32 << 20;
  CUDA_CHECK(cudaMalloc(&ws_, wsSize_));
}

Lt::~Lt() {
  for (auto& kv : plans_) {
    cublasLtMatrixLayoutDestroy(kv.second.a);
    cublasLtMatrixLayoutDestroy(kv.second.b);
    cublasLtMatrixLayoutDestroy(kv.second.c);
    cublasLtMatmulDescDestroy(kv.second.op);
  }
  cudaFree(ws_);
  cublasLtDestroy(h_);
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLASLt sees m = N, n = M,
// its first operand is our B and its second our A, with the transpose flags carried over.
bool Lt::gemm(bool ta, bool tb, int M, int N, int K, float alpha, Mat A, Mat B, float beta, void* C, int ldc,
              long long strideC, int batch, cudaDataType_t ab, cudaDataType_t c, Epilogue ep, const void* cIn) {
  if (M <= 0 || N <= 0) return true;
  const void* vec = ep.bias ? ep.bias : ep.sumA;
  if (vec && (batch > 1 || (uintptr_t)vec % 16)) return false;
  const int kind = ep.bias ? 1 : ep.sumA ? 2 : 0;
  const size_t eab = esize(ab), ec = esize(c);
  const int alA = alignment(A.p, A.ld, A.stride, batch, eab), alB = alignment(B.p, B.ld, B.stride, batch, eab);
  if (!cIn) cIn = C;
  const int alC = std::min(alignment(C, ldc, strideC, batch, ec), alignment(cIn, ldc, strideC, batch, ec));
  const Key key{ta, tb, M, N, K, A.ld, B.ld, ldc, batch, A.stride, B.stride, strideC, (int)ab, (int)c, alA, alB, alC, kind};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    Plan p;
    LT_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opFirst = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opSecond = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opFirst, sizeof(opFirst)));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opSecond, sizeof(opSecond)));
    if (vec) {
      // The bias has C's type (cuBLASLt's default); the bias gradient is fp32.
      const cublasLtEpilogue_t e = ep.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_BGRADB;
      const int32_t vecType = ep.bias ? (int32_t)c : (int32_t)CUDA_R_32F;
      LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
      LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &vecType, sizeof(vecType)));
      LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vec, sizeof(vec)));
    }
    // Stored shapes in column-major terms: first operand (our B) is [N x K] or [K x N] when
    // transposed; second (our A) is [K x M] or [M x K]; C is [N x M].
    LT_CHECK(cublasLtMatrixLayoutCreate(&p.a, ab, tb ? K : N, tb ? N : K, B.ld));
    LT_CHECK(cublasLtMatrixLayoutCreate(&p.b, ab, ta ? M : K, ta ? K : M, A.ld));
    LT_CHECK(cublasLtMatrixLayoutCreate(&p.c, c, N, M, ldc));
    if (batch > 1) {
      const int32_t n = batch;
      const int64_t sa = B.stride, sb = A.stride, sc = strideC;
      for (auto* l : {p.a, p.b, p.c}) LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &n, sizeof(n)));
      LT_CHECK(cublasLtMatrixLayoutSetAttribute(p.a, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof(sa)));
      LT_CHECK(cublasLtMatrixLayoutSetAttribute(p.b, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof(sb)));
      LT_CHECK(cublasLtMatrixLayoutSetAttribute(p.c, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof(sc)));
    }
    cublasLtMatmulPreference_t pref;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint32_t a1 = alB, a2 = alA, a3 = alC;  // first operand is our B
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsSize_, sizeof(wsSize_)));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a1, sizeof(a1)));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a2, sizeof(a2)));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a3, sizeof(a3)));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a3, sizeof(a3)));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h_, p.op, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if ((st != CUBLAS_STATUS_SUCCESS || found == 0) && !vec)
      throw std::runtime_error("cuBLASLt has no algorithm for a " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                               std::to_string(K) + " product (batch " + std::to_string(batch) + ")");
    p.algo = res.algo;
    p.found = st == CUBLAS_STATUS_SUCCESS && found > 0;
    it = plans_.emplace(key, p).first;
  }
  const Plan& p = it->second;
  if (!p.found) return false;
  // The heuristic saw the first call's pointer; each call names its own.
  if (vec) LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vec, sizeof(vec)));
  // Named as the performance model (scripts/model-cuda.ts) groups products.
  profile::Scope prof(batch > 1 ? "cuBLASLt: attention products (batched over heads)" : "cuBLASLt: linear layers and LM head", stream_);
  LT_CHECK(cublasLtMatmul(h_, p.op, &alpha, B.p, p.a, A.p, p.b, &beta, cIn, p.c, C, p.c, &p.algo, ws_, wsSize_, stream_));
  return true;
}

}  // namespace cuda
}  // namespace cpt
