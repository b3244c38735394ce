import type { NeoXConfig } from '../model/config.js';
import type { EngineOps } from './ops.js';

/** Tensors by HF name, HF layout (row-major; Linear weights [out, in]), float32. */
export type WeightMap = Map<string, Float32Array>;

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (p -= lr * wd * p), applied to 2-D weights only (ParamSpec.decay). */
  weightDecay: number;
  /** Clip the accumulated gradient to this global L2 norm; <= 0 disables clipping. */
  clip: number;
}

export interface OptimizerState {
  step: number; // AdamW steps taken (bias correction)
  m: WeightMap; // first moments by parameter name
  v: WeightMap; // second moments by parameter name
}

export type { EngineKind } from './registry.js';
export const PRECISIONS = ['fp32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * The one interface every stage above the engines uses (selection, trainer, monitor, eval): the
 * batch operations of the engine operation table (native/src/ops.h → ops.ts), and the state
 * around them.
 *
 * Token layout everywhere: `ids` is row-major [batch, seq] int32. A row of `seq` tokens yields
 * `seq` logits and `seq - 1` next-token predictions: position t predicts ids[t + 1]. Losses are
 * means over those predictions (over the whole batch). All calls are synchronous.
 */
export interface Engine extends EngineOps {
  /** "native-cpu", "tfjs-cpu", "tfjs-tensorflow": reported in logs and results. */
  readonly name: string;
  readonly config: NeoXConfig;

  loadWeights(w: WeightMap): void;
  exportWeights(): WeightMap;

  /** The accumulated gradients (golden tests). */
  exportGrads(): WeightMap;
  zeroGrads(): void;
  /**
   * Clip the accumulated gradients by global norm, apply one AdamW step, zero the accumulators.
   * Returns the global gradient norm before clipping. When that norm is not finite (NaN or Inf
   * somewhere in the gradients) nothing is applied: the accumulators are zeroed and the weights,
   * moments and step count stay as they were.
   */
  applyAdamW(o: AdamWOptions): { gradNorm: number };

  exportOptimizer(): OptimizerState;
  importOptimizer(s: OptimizerState): void;

  dispose(): void;
}

export interface EngineOptions {
  /** Worker threads for the native engine; default: number of cores. */
  threads?: number;
  /**
   * Matmul precision: fp32, or bf16 operands with fp32 accumulation (native: AMX or AVX512-BF16,
   * falling back to fp32 where the CPU has neither; cuda: tensor cores). Default: the engine's
   * own (native fp32, cuda bf16). The tfjs engine is fp32 only.
   */
  precision?: Precision;
  /** cuda: keep only each layer's input and recompute its activations in backward. */
  recompute?: boolean;
}
