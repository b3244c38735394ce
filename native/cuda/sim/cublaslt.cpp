// cuda-sim's cuBLASLt: D = alpha * op(A) op(B) + beta * C in column-major order, fp32
// accumulation in a fixed order (bitwise reproducible), bf16 results rounded to nearest even.
// Problems are validated when an algorithm is asked for, as the real heuristic does; the
// algorithm remembers the problem and the alignment promised for each operand, and
// cublasLtMatmul refuses pointers, leading dimensions or strides that break those promises,
// operands that run past their allocation, and an algorithm reused for another problem.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../gemm.h"
#include "cublasLt.h"
#include "cuda_bf16.h"
#include "internal.h"

struct cublasLtContext {
  int magic = 0x4c54;
};
struct cublasLtMatmulDescOpaque {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  int32_t pointerMode = 0;
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N, transc = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  void* bias = nullptr;
  int32_t biasType = -1;  // -1: D's type
};
struct cublasLtMatrixLayoutOpaque {
  cudaDataType_t type;
  int32_t order = CUBLASLT_ORDER_COL;
  uint64_t rows, cols;
  int64_t ld;
  int32_t batch = 1;
  int64_t stride = 0;
};
struct cublasLtMatmulPreferenceOpaque {
  uint64_t workspace = 0;
  uint32_t align[4] = {256, 256, 256, 256};  // the library's defaults: A, B, C, D
};

namespace {

thread_local std::string detail;
cublasStatus_t refuse(cublasStatus_t s, const std::string& why) {
  detail = why;
  return s;
}

template <class T>
cublasStatus_t setAttr(T& field, const void* buf, size_t size) {
  if (!buf || size != sizeof(T)) return refuse(CUBLAS_STATUS_INVALID_VALUE, "attribute of the wrong size");
  std::memcpy(&field, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

size_t esize(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_16BF || t == CUDA_R_16F ? 2 : 0; }

// FNV-1a over the fields that define a problem (not pointers, which may change between calls).
uint64_t fingerprint(const cublasLtMatmulDescOpaque* d, const cublasLtMatrixLayoutOpaque* const ls[4]) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char*)p)[i]) * 1099511628211ull;
  };
  mix(&d->compute, sizeof d->compute), mix(&d->scale, sizeof d->scale), mix(&d->transa, 4), mix(&d->transb, 4);
  mix(&d->epilogue, 4), mix(&d->biasType, 4);
  for (int i = 0; i < 4; i++) {
    const auto* l = ls[i];
    mix(&l->type, sizeof l->type), mix(&l->order, 4), mix(&l->rows, 8), mix(&l->cols, 8), mix(&l->ld, 8);
    mix(&l->batch, 4), mix(&l->stride, 8);
  }
  return h;
}

constexpr uint64_t kAlgoMagic = 0x63707473696d4c54ull;  // "cptsimLT"

// Shapes, types and orders of one problem; k is set from A.
cublasStatus_t validate(const cublasLtMatmulDescOpaque* d, const cublasLtMatrixLayoutOpaque* const ls[4], uint64_t* k) {
  const auto *A = ls[0], *B = ls[1], *C = ls[2], *D = ls[3];
  if (d->compute != CUBLAS_COMPUTE_32F && d->compute != CUBLAS_COMPUTE_32F_PEDANTIC &&
      d->compute != CUBLAS_COMPUTE_32F_FAST_16BF && d->compute != CUBLAS_COMPUTE_32F_FAST_TF32)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "compute type " + std::to_string(d->compute) + " is not modelled");
  if (d->scale != CUDA_R_32F) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "scale type must be CUDA_R_32F with a 32F compute type");
  if (d->pointerMode != 0) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "only host pointers for alpha and beta are modelled");
  if (d->transc != CUBLAS_OP_N) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "TRANSC must be CUBLAS_OP_N");
  // Epilogues, unbatched: a bias of D's type added to every column of D (BIAS: D[i][j] =
  // al op(A) op(B) + be C + bias[i], rounded once), and the bias gradient of B (BGRADB: bias[j] =
  // the sum over k of op(B)[k][j], written, fp32); no other is modelled.
  const int32_t vecType = d->biasType == -1 ? ls[3]->type : d->biasType;
  if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BGRADB && d->epilogue != CUBLASLT_EPILOGUE_BIAS)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "epilogue " + std::to_string(d->epilogue) + " is not modelled");
  if (d->epilogue == CUBLASLT_EPILOGUE_BGRADB && (vecType != CUDA_R_32F || ls[3]->batch != 1))
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "BGRADB is modelled with an fp32 bias gradient and no batch only");
  if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && (vecType != ls[3]->type || ls[3]->batch != 1))
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "BIAS is modelled with a bias of D's type and no batch only");
  for (int i = 0; i < 4; i++)
    if (ls[i]->order != CUBLASLT_ORDER_COL) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "only column-major layouts are modelled");
  const bool fp32 = A->type == CUDA_R_32F && B->type == CUDA_R_32F && C->type == CUDA_R_32F;
  const bool bf16 = A->type == CUDA_R_16BF && B->type == CUDA_R_16BF && (C->type == CUDA_R_16BF || C->type == CUDA_R_32F);
  if (!(fp32 || bf16) || D->type != C->type)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "types A " + std::to_string(A->type) + ", B " + std::to_string(B->type) +
                                                   ", C " + std::to_string(C->type) + ", D " + std::to_string(D->type) +
                                                   " are not a supported combination");
  const uint64_t m = D->rows, n = D->cols;
  const bool ta = d->transa != CUBLAS_OP_N, tb = d->transb != CUBLAS_OP_N;
  *k = ta ? A->rows : A->cols;
  const uint64_t am = ta ? A->cols : A->rows, bk = tb ? B->cols : B->rows, bn = tb ? B->rows : B->cols;
  if (am != m || bk != *k || bn != n || C->rows != m || C->cols != n)
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  "shapes do not chain: op(A) " + std::to_string(am) + "x" + std::to_string(*k) + ", op(B) " +
                      std::to_string(bk) + "x" + std::to_string(bn) + ", C " + std::to_string(C->rows) + "x" +
                      std::to_string(C->cols) + ", D " + std::to_string(m) + "x" + std::to_string(n));
  for (int i = 0; i < 4; i++)
    if (ls[i]->ld < (int64_t)std::max<uint64_t>(1, ls[i]->rows))
      return refuse(CUBLAS_STATUS_INVALID_VALUE, std::string("leading dimension of ") + "ABCD"[i] + " (" +
                                                     std::to_string(ls[i]->ld) + ") is below its rows (" +
                                                     std::to_string(ls[i]->rows) + ")");
  for (int i = 0; i < 4; i++) {
    if (ls[i]->batch != D->batch)
      return refuse(CUBLAS_STATUS_INVALID_VALUE, "batch counts differ between the operands");
    if (ls[i]->batch < 1 || ls[i]->stride < 0)
      return refuse(CUBLAS_STATUS_INVALID_VALUE, "batch count below 1 or a negative batch stride");
  }
  return CUBLAS_STATUS_SUCCESS;
}

// The alignment (bytes, up to 256) of every matrix start of an operand: the pointer, and with
// several batch entries the stride between them (the heuristic already knew the ld).
uint32_t alignmentOf(const void* p, const cublasLtMatrixLayoutOpaque* l) {
  const size_t e = esize(l->type);
  uint64_t x = (uint64_t)(uintptr_t)p | 256;
  if (l->batch > 1) x |= (uint64_t)l->stride * e;
  return (uint32_t)(x & (~x + 1));
}

float load(const void* p, cudaDataType_t t, size_t i) {
  if (t == CUDA_R_32F) return ((const float*)p)[i];
  return __bfloat162float(((const __nv_bfloat16*)p)[i]);
}

float dot(const float* a, const float* b, size_t k) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t p = 0;
  for (; p + 8 <= k; p += 8)
    for (int u = 0; u < 8; u++) s[u] += a[p + u] * b[p + u];
  for (; p < k; p++) s[p % 8] += a[p] * b[p];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

}  // namespace

namespace cpt {
namespace cuda {
std::string cublasLtLocation(std::string* why) {
  if (why) why->clear();
  return "cuda-sim";
}
}  // namespace cuda
}  // namespace cpt

cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  *h = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
size_t cublasLtGetVersion(void) { return 0; }

const char* cublasLtGetStatusString(cublasStatus_t s) {
  const char* base = "CUBLAS_STATUS_UNKNOWN";
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: base = "CUBLAS_STATUS_SUCCESS"; break;
    case CUBLAS_STATUS_NOT_INITIALIZED: base = "CUBLAS_STATUS_NOT_INITIALIZED"; break;
    case CUBLAS_STATUS_ALLOC_FAILED: base = "CUBLAS_STATUS_ALLOC_FAILED"; break;
    case CUBLAS_STATUS_INVALID_VALUE: base = "CUBLAS_STATUS_INVALID_VALUE"; break;
    case CUBLAS_STATUS_ARCH_MISMATCH: base = "CUBLAS_STATUS_ARCH_MISMATCH"; break;
    case CUBLAS_STATUS_MAPPING_ERROR: base = "CUBLAS_STATUS_MAPPING_ERROR"; break;
    case CUBLAS_STATUS_EXECUTION_FAILED: base = "CUBLAS_STATUS_EXECUTION_FAILED"; break;
    case CUBLAS_STATUS_INTERNAL_ERROR: base = "CUBLAS_STATUS_INTERNAL_ERROR"; break;
    case CUBLAS_STATUS_NOT_SUPPORTED: base = "CUBLAS_STATUS_NOT_SUPPORTED"; break;
  }
  static thread_local std::string out;
  out = detail.empty() ? base : std::string(base) + " [cuda-sim: " + detail + "]";
  detail.clear();
  return out.c_str();
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  *d = new cublasLtMatmulDescOpaque{compute, scale};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete d;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void* buf,
                                              size_t size) {
  switch (a) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return setAttr(d->compute, buf, size);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return setAttr(d->scale, buf, size);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return setAttr(d->pointerMode, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSA: return setAttr(d->transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return setAttr(d->transb, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSC: return setAttr(d->transc, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return setAttr(d->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return setAttr(d->bias, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return setAttr(d->biasType, buf, size);
    default: return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "matmul attribute " + std::to_string(a) + " is not modelled");
  }
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  *l = new cublasLtMatrixLayoutOpaque{type, CUBLASLT_ORDER_COL, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete l;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a,
                                                const void* buf, size_t size) {
  switch (a) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return setAttr(l->type, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return setAttr(l->order, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return setAttr(l->rows, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return setAttr(l->cols, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_LD: return setAttr(l->ld, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return setAttr(l->batch, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return setAttr(l->stride, buf, size);
    default: return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "layout attribute " + std::to_string(a) + " is not modelled");
  }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  *p = new cublasLtMatmulPreferenceOpaque;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                                                    const void* buf, size_t size) {
  switch (a) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: {
      uint32_t ignored;
      return setAttr(ignored, buf, size);
    }
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return setAttr(p->workspace, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return setAttr(p->align[0], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return setAttr(p->align[1], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return setAttr(p->align[2], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return setAttr(p->align[3], buf, size);
    default: return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "preference attribute " + std::to_string(a) + " is not modelled");
  }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref,
                                              int requested, cublasLtMatmulHeuristicResult_t results[], int* found) {
  *found = 0;
  if (!h || h->magic != 0x4c54) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "bad handle");
  if (requested < 1) return refuse(CUBLAS_STATUS_INVALID_VALUE, "requested fewer than one algorithm");
  const cublasLtMatrixLayoutOpaque* ls[4] = {a, b, c, d};
  uint64_t k;
  if (cublasStatus_t s = validate(op, ls, &k)) return s;
  for (int i = 0; i < 4; i++) {
    const uint32_t al = pref->align[i];
    if (al == 0 || (al & (al - 1)) || al % esize(ls[i]->type))
      return refuse(CUBLAS_STATUS_INVALID_VALUE, std::string("alignment promise for ") + "ABCD"[i] + " of " +
                                                     std::to_string(al) + " bytes");
  }
  cublasLtMatmulHeuristicResult_t r{};
  r.algo.data[0] = kAlgoMagic;
  r.algo.data[1] = fingerprint(op, ls);
  for (int i = 0; i < 4; i++) r.algo.data[2 + i] = pref->align[i];
  r.workspaceSize = 0;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.f;
  results[0] = r;
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}

namespace {
// D = al op(A) op(B) + be C (+ bias[row], D's type, when set), column-major, fp32 accumulation
// in a fixed order; bgrad, when set, the sums of op(B)'s columns.
void matmul(bool ta, bool tb, uint64_t k, float al, float be, const void* A, const cublasLtMatrixLayoutOpaque* Adesc,
            const void* B, const cublasLtMatrixLayoutOpaque* Bdesc, const void* C, const cublasLtMatrixLayoutOpaque* Cdesc,
            void* D, const cublasLtMatrixLayoutOpaque* Ddesc, const void* bias, float* bgrad);
}  // namespace

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspaceSize, cudaStream_t stream) {
  if (!h || h->magic != 0x4c54) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "bad handle");
  const cublasLtMatrixLayoutOpaque* ls[4] = {Adesc, Bdesc, Cdesc, Ddesc};
  uint64_t k;
  if (cublasStatus_t s = validate(op, ls, &k)) return s;
  if (!algo || algo->data[0] != kAlgoMagic)
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "no algorithm (cublasLtMatmulAlgoGetHeuristic gives one)");
  if (algo->data[1] != fingerprint(op, ls))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "the algorithm was chosen for another problem");
  if (!alpha || !beta || cpt_sim::isDevice(alpha) || cpt_sim::isDevice(beta))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "alpha and beta must be host pointers (pointer mode host)");
  const float al = *(const float*)alpha, be = *(const float*)beta;
  const void* ptrs[4] = {A, B, C, D};
  for (int i = 0; i < 4; i++) {
    if (i == 2 && be == 0.f && !C) continue;  // C is not read when beta is 0
    const auto* l = ls[i];
    const size_t span = (((size_t)l->batch - 1) * (size_t)l->stride + (l->cols - 1) * (size_t)l->ld + l->rows) * esize(l->type);
    const std::string bad = cpt_sim::deviceRange(ptrs[i], span);
    if (!bad.empty()) return refuse(CUBLAS_STATUS_EXECUTION_FAILED, std::string("operand ") + "ABCD"[i] + ": " + bad);
    const uint32_t have = alignmentOf(ptrs[i], l), promised = (uint32_t)algo->data[2 + i];
    if (have < promised)
      return refuse(CUBLAS_STATUS_INVALID_VALUE, std::string("operand ") + "ABCD"[i] + " is " + std::to_string(have) +
                                                     "-byte aligned (pointer, batch stride) but the algorithm was chosen for " +
                                                     std::to_string(promised));
  }
  if (workspaceSize) {
    const std::string bad = cpt_sim::deviceRange(workspace, workspaceSize);
    if (!bad.empty()) return refuse(CUBLAS_STATUS_INVALID_VALUE, "workspace: " + bad);
  }
  // The epilogue's vector: BGRADB's has one fp32 sum per column of D, BIAS's one element of D's
  // type per row. 16-byte alignment is asked of it as others found cuBLASLt needs (undocumented).
  const bool bgradB = op->epilogue == CUBLASLT_EPILOGUE_BGRADB, biasAdd = op->epilogue == CUBLASLT_EPILOGUE_BIAS;
  if (bgradB || biasAdd) {
    const size_t bytes = bgradB ? Ddesc->cols * sizeof(float) : Ddesc->rows * esize(Ddesc->type);
    const std::string bad = cpt_sim::deviceRange(op->bias, bytes);
    if (!bad.empty()) return refuse(CUBLAS_STATUS_EXECUTION_FAILED, std::string(bgradB ? "bias gradient" : "bias") + " (BIAS_POINTER): " + bad);
    if ((uintptr_t)op->bias % 16) return refuse(CUBLAS_STATUS_INVALID_VALUE, "BIAS_POINTER is not 16-byte aligned");
  }
  float* bgrad = bgradB ? (float*)op->bias : nullptr;
  const void* bias = biasAdd ? op->bias : nullptr;
  if (cpt_sim::tracing())
    cpt_sim::trace("{\"gemm\":1,\"m\":" + std::to_string(Ddesc->rows) + ",\"n\":" + std::to_string(Ddesc->cols) + ",\"k\":" +
                   std::to_string(k) + ",\"batch\":" + std::to_string(Ddesc->batch) + ",\"bytesA\":" + std::to_string(esize(Adesc->type)) +
                   ",\"bytesB\":" + std::to_string(esize(Bdesc->type)) + ",\"bytesC\":" + std::to_string(be == 0.f ? 0 : esize(Cdesc->type)) +
                   ",\"bytesD\":" + std::to_string(esize(Ddesc->type)) + (bgrad ? ",\"bgrad\":1" : "") + (bias ? ",\"bias\":1" : "") + "}");
  if (cpt_sim::planning()) return CUBLAS_STATUS_SUCCESS;
  const cpt_sim::Gate g = cpt_sim::gate(stream, "cublasLtMatmul");
  if (g == cpt_sim::Gate::refused) return refuse(CUBLAS_STATUS_EXECUTION_FAILED, "queued where a capture forbids it");
  // The product as queued: alpha, beta and the layouts as they are now (a graph keeps them).
  const bool ta = op->transa != CUBLAS_OP_N, tb = op->transb != CUBLAS_OP_N;
  const auto product = [=, Ad = *Adesc, Bd = *Bdesc, Cd = *Cdesc, Dd = *Ddesc] {
    matmul(ta, tb, k, al, be, A, &Ad, B, &Bd, C, &Cd, D, &Dd, bias, bgrad);
  };
  if (g == cpt_sim::Gate::record) cpt_sim::record(product);
  else product();
  return CUBLAS_STATUS_SUCCESS;
}

namespace {
void matmul(bool ta, bool tb, uint64_t k, float al, float be, const void* A, const cublasLtMatrixLayoutOpaque* Adesc,
            const void* B, const cublasLtMatrixLayoutOpaque* Bdesc, const void* C, const cublasLtMatrixLayoutOpaque* Cdesc,
            void* D, const cublasLtMatrixLayoutOpaque* Ddesc, const void* bias, float* bgrad) {
  const uint64_t m = Ddesc->rows, n = Ddesc->cols;
  std::vector<float> a(m * k), b(n * k);
  for (int bt = 0; bt < Ddesc->batch; bt++) {
    const size_t oa = (size_t)bt * Adesc->stride, ob = (size_t)bt * Bdesc->stride;
    const size_t oc = (size_t)bt * Cdesc->stride, od = (size_t)bt * Ddesc->stride;
    // op(A) as rows of k, op(B) as columns of k: every output is one contiguous dot product.
    for (uint64_t i = 0; i < m; i++)
      for (uint64_t p = 0; p < k; p++) a[i * k + p] = load(A, Adesc->type, oa + (ta ? p + i * Adesc->ld : i + p * Adesc->ld));
    for (uint64_t j = 0; j < n; j++)
      for (uint64_t p = 0; p < k; p++) b[j * k + p] = load(B, Bdesc->type, ob + (tb ? j + p * Bdesc->ld : p + j * Bdesc->ld));
    for (uint64_t j = 0; j < n; j++)
      for (uint64_t i = 0; i < m; i++) {
        float r = al * dot(&a[i * k], &b[j * k], k);
        if (be != 0.f) r += be * load(C, Cdesc->type, oc + i + j * Cdesc->ld);
        if (bias) r += load(bias, Ddesc->type, i);
        const size_t at = od + i + j * Ddesc->ld;
        if (Ddesc->type == CUDA_R_32F) ((float*)D)[at] = r;
        else ((__nv_bfloat16*)D)[at] = __float2bfloat16_rn(r);
      }
    if (bgrad) {
      const std::vector<float> ones(k, 1.f);
      for (uint64_t j = 0; j < n; j++) bgrad[j] = dot(&b[j * k], ones.data(), k);
    }
  }
}
}  // namespace
