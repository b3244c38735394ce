// Row-major matrix products on cuBLASLt (tensor cores for bf16; fp32 without TF32 for exact
// checks): C[M x N] = alpha * op(A)[M x K] op(B)[K x N] + beta * C, optionally strided-batched.
// ta: A is stored [K x M]; tb: B is stored [N x K]. The algorithm for a given problem is chosen
// once by cuBLASLt's heuristic and cached, so repeated calls run the same kernels (bitwise
// reproducible on one GPU model and toolkit, as cuBLAS documents).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

namespace cpt {
namespace cuda {

// Where cuBLASLt was loaded from; empty, with the reason in *why, when none was found.
std::string cublasLtLocation(std::string* why);

struct Mat {
  const void* p;
  int ld;
  long long stride;  // elements between batch entries
};

// What cuBLASLt does as it writes C (unbatched products only). bias (C's type, [N]): added to
// every row of C (BIAS), so a bf16 output needs no fp32 pass of its own. sumA (fp32, [M]): the
// sums of op(A)'s rows over K written there (BGRADB: our A is its B), a linear layer's bias
// gradient when A is dy^T.
struct Epilogue {
  const void* bias = nullptr;
  float* sumA = nullptr;
};

class Lt {
 public:
  Lt();
  ~Lt();
  Lt(const Lt&) = delete;
  Lt& operator=(const Lt&) = delete;
  // ab: type of A and B (CUDA_R_32F or CUDA_R_16BF); c: type of C (CUDA_R_32F or CUDA_R_16BF).
  // cIn: the C that beta scales when it is not the output (same layout); default the output.
  // Returns false, queueing nothing, when cuBLASLt has no algorithm for the epilogue, or its
  // vector is not 16-byte aligned (what cuBLASLt needs of it is not documented).
  bool gemm(bool ta, bool tb, int M, int N, int K, float alpha, Mat A, Mat B, float beta, void* C, int ldc,
            long long strideC, int batch, cudaDataType_t ab, cudaDataType_t c, Epilogue ep = {}, const void* cIn = nullptr);
  void setStream(cudaStream_t s) { stream_ = s; }  // where the products go (default: legacy)

 private:
  using Key = std::tuple<int, int, int, int, int, int, int, int, int, long long, long long, long long, int, int, int,
                         int, int, int>;
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool found = false;  // false: cuBLASLt has no algorithm (an epilogue it refuses)
  };
  cublasLtHandle_t h_ = nullptr;
  void* ws_ = nullptr;
  size_t wsSize_ = 0;
  cudaStream_t stream_ = nullptr;
  std::map<Key, Plan> plans_;
};

}  // namespace cuda
}  // namespace cpt
