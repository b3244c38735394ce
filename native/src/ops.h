/* The engines' batch operations, each declared once. Every engine implements them with the same
 * meaning: the CPU engine (engine.h/.cpp), the CUDA engine (native/cuda/engine.cu, its C ABI in
 * cpt_cuda.h), the N-API binding (binding.cpp) and, generated from this file by
 * `npm run engine:ops` (a test checks it is current), the TypeScript interface in
 * src/engine/ops.ts that the tfjs engine implements too.
 *
 * X(method, c_name, result, out_elems, params, args, js_args)
 *   method    C++ and TypeScript method name; the C ABI function is cpt_cuda_<c_name>
 *   result    OUT: fills `float* out` with out_elems floats (its shape in the comment above);
 *             LOSS: returns a double
 *   params    what follows (ids [B, T] int32 row-major, B, T): a parenthesised list, each item
 *             led by a comma; types among double, int and const int32_t*
 *   args      the same parameters by name, for forwarding
 *   js_args   how the binding reads them from the JavaScript call (argument 3 on); a reader's
 *             last argument, when it has one more, is the default (the TypeScript parameter is
 *             then optional)
 * Position t of a row predicts ids[t + 1]: T positions, T - 1 predictions per row. */
#ifndef CPT_OPS_H
#define CPT_OPS_H

#define CPT_OPS(X)                                                                                          \
  /* logits: [B, T, V] the LM head's output (golden tests, debugging) */                                    \
  X(logits, logits, OUT, (size_t)B * T * vocab, (), (), ())                                                 \
  /* tokenLogprobs: [B, T - 1] log p(ids[b, t + 1] | ids[b, <= t]) */                                        \
  X(tokenLogprobs, token_logprobs, OUT, (size_t)B * (T > 1 ? T - 1 : 0), (), (), ())                         \
  /* meanHidden: [B, D] mean over the first lengths[b] positions of the final hidden states (after the     \
     final layer norm); lengths: [B] */                                                                     \
  X(meanHidden, mean_hidden, OUT, (size_t)B * hidden, (, const int32_t* lengths), (, lengths),             \
    (, jsRows(info, 3, B)))                                                                                 \
  /* evalLoss: the mean next-token loss over the batch's B * (T - 1) predictions, no gradients */           \
  X(evalLoss, eval_loss, LOSS, 0, (), (), ())                                                               \
  /* trainStep: forward + backward; adds gradScale * d(mean loss)/dW to the gradient accumulators           \
     (1 / micro-batches when accumulating); returns the unscaled mean loss */                               \
  X(trainStep, train_step, LOSS, 0, (, double gradScale), (, gradScale), (, jsNumber(info, 3, 1)))

#define CPT_UNPAREN(...) __VA_ARGS__
/* An operation's C++ signature by result kind: OUT writes `out`, LOSS returns the loss. */
#define CPT_OP_SIGNATURE(method, result, params) CPT_OP_SIGNATURE_##result(method, params)
#define CPT_OP_SIGNATURE_OUT(method, params) void method(const int32_t* ids, int B, int T CPT_UNPAREN params, float* out)
#define CPT_OP_SIGNATURE_LOSS(method, params) double method(const int32_t* ids, int B, int T CPT_UNPAREN params)
/* The C ABI's: every function returns 0 or -1 (cpt_cuda_error() says why); LOSS writes `*out`. */
#define CPT_OP_C_SIGNATURE(c_name, result, params) \
  int cpt_cuda_##c_name(CptCudaEngine* e, const int32_t* ids, int B, int T CPT_UNPAREN params, CPT_OP_C_OUT_##result)
#define CPT_OP_C_OUT_OUT float* out
#define CPT_OP_C_OUT_LOSS double* out

#endif
