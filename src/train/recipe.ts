/**
 * The recipe's `train:` and `checkpoint:` sections. Optimiser, schedule and batch default to the
 * Pythia training configs (EleutherAI/pythia `models/*.yml`); learning rates by model size are
 * model/presets' PYTHIA_LR, settled in resolve (they depend on model.init).
 */
import { z } from 'zod';
import { doc, nonNegInt, posInt, posNum, type Settled } from '../recipe/keys.js';

/** Pythia decays to 10% of the peak learning rate. */
export const MIN_LR_RATIO = 0.1;

export const TrainSchema = z.strictObject({
  lr: doc(posNum.optional(), 'Peak learning rate.', { type: 'float > 0', default: "Pythia's for the model size" }),
  min_lr: doc(z.number().nonnegative().optional(), 'Final learning rate.', { type: 'float <= lr', default: `${MIN_LR_RATIO} × lr` }),
  warmup: doc(z.number().min(0).lt(1).default(0.01), 'Warmup as a fraction of total steps.', { type: 'float in [0, 1)' }),
  schedule: doc(z.enum(['cosine', 'constant']).default('cosine'), 'Learning-rate decay after warmup.'),
  beta1: doc(z.number().min(0).lt(1).default(0.9), 'Adam beta1.', { type: 'float in [0, 1)' }),
  beta2: doc(z.number().min(0).lt(1).default(0.95), 'Adam beta2.', { type: 'float in [0, 1)' }),
  eps: doc(posNum.default(1e-8), 'Adam epsilon.', { type: 'float > 0' }),
  weight_decay: doc(z.number().nonnegative().default(0.1), 'Decoupled weight decay on 2-D weights only.'),
  clip: doc(z.number().nonnegative().default(1.0), 'Gradient-norm clip; 0 turns it off.'),
  // 1024 sequences × 2048 tokens.
  batch_tokens: doc(posInt.default(2_097_152), 'Global batch in tokens, a multiple of seq_len × micro_batch (else rounded, with a note).'),
  // One sequence per engine call: the lowest memory on a CPU engine; the batch is reached by accumulation.
  micro_batch: doc(posInt.default(1), 'Sequences per engine call; the batch is reached by accumulation.'),
  seq_len: doc(z.number().int().min(2).default(2048), 'Tokens per sequence.', { type: "int <= the model's max_position_embeddings" }),
  epochs: doc(posNum.default(1), 'Passes over the selected data.'),
  max_tokens: doc(posInt.optional(), 'Stop after this many tokens.', { default: 'one pass over the selection × epochs' }),
  max_steps: doc(posInt.optional(), 'Stop after this many optimizer steps.', { default: 'none' }),
  seed: doc(nonNegInt.default(1234), 'Seed of init, data order and sampling in training.'),
  skip_nonfinite: doc(z.boolean().default(false), 'Skip (and count) a step whose loss or gradient norm is not finite instead of stopping the run.'),
});

export const CheckpointSchema = z.strictObject({
  every: doc(posInt.default(250), 'Save every this many steps (and at the end).'),
  keep: doc(posInt.default(3), 'Checkpoints kept, newest first.'),
});

/** After resolution: lr and min_lr settled from the model size; batch_tokens a whole number of micro-batches. */
export type TrainConfig = Settled<z.output<typeof TrainSchema>, 'lr' | 'min_lr'>;
export type CheckpointConfig = z.output<typeof CheckpointSchema>;
