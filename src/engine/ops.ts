// Generated from native/src/ops.h by `npm run engine:ops`; a test checks it is current. Do not edit.

/** The batch operations every engine implements (native/src/ops.h), in its order. */
export const ENGINE_OPS = ['logits', 'tokenLogprobs', 'meanHidden', 'evalLoss', 'trainStep'] as const;
export type EngineOp = (typeof ENGINE_OPS)[number];

/** ids: [batch, seq] int32, row-major; position t predicts ids[t + 1]. All calls are synchronous. */
export interface EngineOps {
  /** [B, T, V] the LM head's output (golden tests, debugging) */
  logits(ids: Int32Array, batch: number, seq: number): Float32Array;
  /** [B, T - 1] log p(ids[b, t + 1] | ids[b, <= t]) */
  tokenLogprobs(ids: Int32Array, batch: number, seq: number): Float32Array;
  /** [B, D] mean over the first lengths[b] positions of the final hidden states (after the final layer norm); lengths: [B] */
  meanHidden(ids: Int32Array, batch: number, seq: number, lengths: Int32Array): Float32Array;
  /** the mean next-token loss over the batch's B * (T - 1) predictions, no gradients */
  evalLoss(ids: Int32Array, batch: number, seq: number): number;
  /** forward + backward; adds gradScale * d(mean loss)/dW to the gradient accumulators (1 / micro-batches when accumulating); returns the unscaled mean loss */
  trainStep(ids: Int32Array, batch: number, seq: number, gradScale?: number): number;
}
