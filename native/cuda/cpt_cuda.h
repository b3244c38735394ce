/* C ABI of libcpt_cuda.so, the CUDA engine. The Node addon dlopen()s the library at run time
 * (so the CPU engine builds and runs where no CUDA exists); the standalone harness links it.
 * Every function that can fail returns 0 on success and -1 on failure, with the reason in
 * cpt_cuda_error() (per thread). Tensors cross as fp32 in HF layout, indexed by the parameter
 * table (native/src/model.h). Calls are synchronous. */
#ifndef CPT_CUDA_H
#define CPT_CUDA_H
#include <stddef.h>
#include <stdint.h>

#include "../src/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CPT_CUDA_ABI 1

typedef struct {
  int hidden, layers, heads, inter, vocab;
  double rotaryPct, rotaryBase, lnEps;
  int exactGelu, parallelResidual, tied;
} CptCudaConfig;

typedef struct {
  int bf16;      /* 1: bf16 operands and activations, fp32 accumulation and master weights; 0: fp32 */
  int recompute; /* 1: keep only each layer's input; recompute its activations in backward */
  int device;    /* CUDA device ordinal */
} CptCudaOptions;

typedef struct CptCudaEngine CptCudaEngine;

int cpt_cuda_abi(void);
const char* cpt_cuda_error(void);
/* 0 with the device's name when a CUDA device is usable; -1 ("no CUDA device was found ...") else. */
int cpt_cuda_probe(int device, char* name, size_t len);
/* What verify.sh's preflight prints: name=value lines for the device (name, compute capability,
 * multiprocessors, memory), the driver's and the runtime's CUDA versions, and cuBLASLt's version.
 * Fills what it can even when no device is usable; returns the probe's status. */
int cpt_cuda_describe(int device, char* out, size_t len);

CptCudaEngine* cpt_cuda_create(const CptCudaConfig* c, const CptCudaOptions* o);
void cpt_cuda_destroy(CptCudaEngine* e);
const char* cpt_cuda_device_name(const CptCudaEngine* e);

int cpt_cuda_num_params(const CptCudaEngine* e);
const char* cpt_cuda_param_name(const CptCudaEngine* e, int i);
size_t cpt_cuda_param_size(const CptCudaEngine* e, int i);
/* which: 0 weights, 1 gradients, 2 first moments, 3 second moments */
int cpt_cuda_set_tensor(CptCudaEngine* e, int which, int i, const float* data);
int cpt_cuda_get_tensor(CptCudaEngine* e, int which, int i, float* out);
int64_t cpt_cuda_get_step(const CptCudaEngine* e);
void cpt_cuda_set_step(CptCudaEngine* e, int64_t step);

/* The batch operations of native/src/ops.h, one function each:
 *   int cpt_cuda_logits(e, ids, B, T, float* out)            out [B, T, V]
 *   int cpt_cuda_token_logprobs(e, ids, B, T, float* out)    out [B, T - 1]
 *   int cpt_cuda_mean_hidden(e, ids, B, T, const int32_t* lengths, float* out)   out [B, D]
 *   int cpt_cuda_eval_loss(e, ids, B, T, double* out)        the mean loss
 *   int cpt_cuda_train_step(e, ids, B, T, double gradScale, double* out)   the mean loss */
#define CPT_CUDA_DECLARE_OP(method, c_name, result, out_elems, params, args, js_args) \
  CPT_OP_C_SIGNATURE(c_name, result, params);
CPT_OPS(CPT_CUDA_DECLARE_OP)
#undef CPT_CUDA_DECLARE_OP
int cpt_cuda_zero_grads(CptCudaEngine* e);
int cpt_cuda_adamw(CptCudaEngine* e, double lr, double beta1, double beta2, double eps, double weightDecay,
                   double clip, double* gradNorm);

/* Where GPU time goes (native/cuda/profile.h): between start and stop, every kernel launch and
 * cuBLASLt product of any engine is timed with CUDA events. stop waits for the GPU and writes
 * one line per kernel name, "what\tlaunches\tmilliseconds"; returns the bytes needed, -1 on
 * error. */
void cpt_cuda_profile_start(void);
int cpt_cuda_profile_stop(char* out, size_t len);

#ifdef __cplusplus
}
#endif
#endif
