// cuBLASLt found at run time rather than at link time, so one build of the CUDA engine runs
// wherever a cuBLASLt is: the CUDA toolkit's, the loader path's, or the one in NVIDIA's PyPI
// wheels that PyTorch installs (site-packages/nvidia/*/lib). $CPT_CUBLASLT names the file to use;
// else libcublasLt.so.13 first, then .so.12, then .so.11 (the CUDA 11.8 build: .so.11, .so.12, .so.13), in: $CPT_CUDA_LIBS, the loader path, $CUDA_HOME,
// /usr/local/cuda, every Python prefix's site-packages, and the directory built against. Each cuBLASLt function
// the engine calls is defined here and forwards to the loaded library; every one of them is
// looked up when the library loads, so a missing symbol is reported then, by name, never later.
// GPU build only (the simulator has its own cuBLASLt).
#include <cublasLt.h>
#include <dlfcn.h>
#include <glob.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gemm.h"

#ifndef CPT_LT_BUILD_DIR
#define CPT_LT_BUILD_DIR ""
#endif

#define CPT_LT_FUNCS(X)                                                                                          \
  X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtGetVersion) X(cublasLtGetStatusString) X(cublasLtMatmul)       \
  X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy)                   \
  X(cublasLtMatmulDescSetAttribute) X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)       \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy)         \
  X(cublasLtMatrixLayoutSetAttribute)

namespace {

struct Lt {
  std::string path, error;
#define CPT_LT_PTR(name) decltype(&::name) name = nullptr;
  CPT_LT_FUNCS(CPT_LT_PTR)
#undef CPT_LT_PTR
};

std::vector<std::string> searchDirs() {
  std::vector<std::string> d;
  auto env = [](const char* k) { const char* v = std::getenv(k); return std::string(v ? v : ""); };
  const std::string libs = env("CPT_CUDA_LIBS");
  for (size_t at = 0; at <= libs.size();) {
    const size_t end = libs.find(':', at) == std::string::npos ? libs.size() : libs.find(':', at);
    if (end > at) d.push_back(libs.substr(at, end - at));
    at = end + 1;
  }
  d.push_back("");  // the loader's own search: LD_LIBRARY_PATH, ldconfig's cache
  for (const std::string& root : {env("CUDA_HOME"), env("CUDA_PATH"), std::string("/usr/local/cuda")})
    if (!root.empty()) d.push_back(root + "/lib64");
  std::vector<std::string> prefixes = {env("VIRTUAL_ENV"), env("CONDA_PREFIX"), "/usr/local", "/usr", "/opt/conda",
                                       "/opt/torch/.venv", env("HOME") + "/.local"};
  std::vector<std::string> patterns;
  for (const std::string& p : prefixes)
    if (!p.empty()) patterns.push_back(p + "/lib/python3*/*-packages/nvidia/*/lib");
  patterns.push_back(env("HOME") + "/.pyenv/versions/*/lib/python3*/site-packages/nvidia/*/lib");
  for (const std::string& pat : patterns) {
    glob_t g;
    if (glob(pat.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) d.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  if (*CPT_LT_BUILD_DIR) d.push_back(CPT_LT_BUILD_DIR);
  return d;
}

Lt load() {
  Lt lt;
  const std::vector<std::string> dirs = searchDirs();
  void* h = nullptr;
  if (const char* only = std::getenv("CPT_CUBLASLT"); only && *only) {
    if (!(h = dlopen(only, RTLD_NOW | RTLD_LOCAL))) {
      lt.error = std::string("CPT_CUBLASLT=") + only + " cannot be loaded: " + dlerror();
      return lt;
    }
    lt.path = only;
  }
  // Newest first for the CUDA 13 build; the CUDA 11.8 build runs on drivers older than R580,
  // which cuBLASLt 13 does not, so it takes 11 (R450+), then 12 (R525+).
#if CUDART_VERSION >= 13000
  const char* const names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"};
#else
  const char* const names[] = {"libcublasLt.so.11", "libcublasLt.so.12", "libcublasLt.so.13"};
#endif
  for (const char* name : names) {
    if (h) break;
    for (const std::string& dir : dirs) {
      const std::string p = dir.empty() ? name : dir + "/" + name;
      if ((h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL))) {
        lt.path = p;
        break;
      }
    }
    if (h) break;
  }
  if (!h) {
    std::string where;
    for (const std::string& dir : dirs) where += (where.empty() ? "" : ", ") + (dir.empty() ? std::string("the loader path") : dir);
    lt.error = "cuBLASLt (libcublasLt.so.13, .so.12 or .so.11) was not found in " + where +
               "; install the CUDA toolkit or `pip install nvidia-cublas`, or name its lib directory in CPT_CUDA_LIBS";
    return lt;
  }
#define CPT_LT_RESOLVE(name)                                                    \
  lt.name = reinterpret_cast<decltype(lt.name)>(dlsym(h, #name));               \
  if (!lt.name) {                                                               \
    lt.error = lt.path + " lacks " #name " (a cuBLASLt older than CUDA 12?)";   \
    lt.path.clear();                                                            \
    return lt;                                                                  \
  }
  CPT_LT_FUNCS(CPT_LT_RESOLVE)
#undef CPT_LT_RESOLVE
  return lt;
}

const Lt& lt() {
  static const Lt l = load();
  return l;
}

}  // namespace

namespace cpt {
namespace cuda {
std::string cublasLtLocation(std::string* why) {
  if (why) *why = lt().error;
  return lt().path;
}
}  // namespace cuda
}  // namespace cpt

// ---- the functions the engine calls, forwarded (NOT_INITIALIZED when no cuBLASLt was found:
// the probe reports why before any of these runs)
extern "C" {
#define CPT_LT_CALL(name, ...) return lt().name ? lt().name(__VA_ARGS__) : CUBLAS_STATUS_NOT_INITIALIZED
cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) { CPT_LT_CALL(cublasLtCreate, h); }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { CPT_LT_CALL(cublasLtDestroy, h); }
size_t cublasLtGetVersion(void) { return lt().cublasLtGetVersion ? lt().cublasLtGetVersion() : 0; }
const char* cublasLtGetStatusString(cublasStatus_t s) {
  return lt().cublasLtGetStatusString ? lt().cublasLtGetStatusString(s) : "cuBLASLt is not loaded";
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Ad, const void* B, cublasLtMatrixLayout_t Bd, const void* beta,
                              const void* C, cublasLtMatrixLayout_t Cd, void* D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t* algo, void* ws, size_t wsSize, cudaStream_t stream) {
  CPT_LT_CALL(cublasLtMatmul, h, op, alpha, A, Ad, B, Bd, beta, C, Cd, D, Dd, algo, ws, wsSize, stream);
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref,
                                              int requested, cublasLtMatmulHeuristicResult_t results[], int* found) {
  CPT_LT_CALL(cublasLtMatmulAlgoGetHeuristic, h, op, a, b, c, d, pref, requested, results, found);
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  CPT_LT_CALL(cublasLtMatmulDescCreate, d, compute, scale);
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { CPT_LT_CALL(cublasLtMatmulDescDestroy, d); }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void* buf,
                                              size_t size) {
  CPT_LT_CALL(cublasLtMatmulDescSetAttribute, d, a, buf, size);
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) { CPT_LT_CALL(cublasLtMatmulPreferenceCreate, p); }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { CPT_LT_CALL(cublasLtMatmulPreferenceDestroy, p); }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                                                    const void* buf, size_t size) {
  CPT_LT_CALL(cublasLtMatmulPreferenceSetAttribute, p, a, buf, size);
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  CPT_LT_CALL(cublasLtMatrixLayoutCreate, l, type, rows, cols, ld);
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { CPT_LT_CALL(cublasLtMatrixLayoutDestroy, l); }
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a,
                                                const void* buf, size_t size) {
  CPT_LT_CALL(cublasLtMatrixLayoutSetAttribute, l, a, buf, size);
}
#undef CPT_LT_CALL
}
