/** The recipe's `engine:` section: where the model trains. Kinds and precisions come from the registry. */
import { z } from 'zod';
import { doc, nonNegInt, type Settled } from '../recipe/keys.js';
import { ENGINE_KINDS, PRECISIONS } from './registry.js';

export const EngineSchema = z.strictObject({
  kind: doc(z.enum(ENGINE_KINDS).default('native'), 'native: the C++ CPU engine; cuda: one NVIDIA GPU (ran on an H200 on 2026-12-04; docs/engines.md); tfjs: the TensorFlow.js reference.'),
  threads: doc(nonNegInt.default(0), 'Threads; 0 = all cores.'),
  precision: doc(z.enum(PRECISIONS).optional(), 'Matmul precision: fp32, or bf16 operands with fp32 accumulation (native: Intel AMX or AVX512-BF16, fp32 where the CPU has neither; cuda: tensor cores).', { default: 'fp32 on native and tfjs, bf16 on cuda' }),
  recompute: doc(z.boolean().default(false), "cuda: keep only each layer's input and recompute its activations in backward (~1/3 more compute, a fraction of the activation memory)."),
});

/** After resolution: precision settled from the kind's default (engine registry). */
export type EngineConfig = Settled<z.output<typeof EngineSchema>, 'precision'>;
