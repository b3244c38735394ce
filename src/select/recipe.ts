/** The recipe's `selection:` section: which documents to train on. Loading it loads no scorer. */
import { z } from 'zod';
import { doc, nonNegInt, posInt, posNum, section, str, type Settled } from '../recipe/keys.js';

/** What resolution asks of the metrics (the registry is light: no scorer loads with it). */
import { etaMetricNames } from './metrics/registry.js';
export { etaMetricNames, findMetric } from './metrics/registry.js';

/** FinPythia's efficient methods train on 10% of the domain tokens (dacp and tacp default to everything). */
export const EFFICIENT_BUDGET = 0.1;

export const EmbedderSchema = z.strictObject({
  kind: doc(z.enum(['hashed', 'model', 'transformers']).default('hashed'), 'hashed: hashed uni/bi-gram counts (no model needed); model: mean-pooled hidden states of `model`; transformers: a local transformers.js feature-extraction directory in `model`.'),
  /**
   * 4096 buckets: a document has a few hundred distinct uni/bi-grams, so in-document collisions stay
   * around k/(2·dim) ≈ 5%, and the random cross-term in a cosine is ~1/√dim ≈ 1.6% of the norms, far
   * below the similarity gaps we rank on; a dense float32 vector is 16 KiB, so embedding every document
   * of the data kit (~40k) fits in well under 1 GiB.
   */
  dim: doc(posInt.default(4096), 'hashed: buckets.'),
  ngrams: doc(z.number().int().min(1).max(3).default(2), 'hashed: 1 = unigrams, 2 = uni+bigrams.', { type: 'int in 1..3' }),
  model: doc(str.optional(), 'model / transformers: the model directory.', { type: 'path', default: 'none' }),
  max_tokens: doc(posInt.default(512), 'model: tokens of each document embedded.'),
});

export const SelectionSchema = z.strictObject({
  // A task-free metric of the registry (metrics/registry.ts), checked in resolve: it depends on the method.
  metric: doc(str.optional(), 'eta-dacp: the task-free metric to rank by.', { type: etaMetricNames().join(' | '), default: 'none (required by eta-dacp)' }),
  sampling: doc(z.enum(['hard', 'soft']).default('hard'), 'hard: take the top-scoring documents up to the budget; soft: sample without replacement with probability ∝ normalised score^(1/temperature).'),
  budget: doc(z.number().positive().max(1).optional(), "Token budget as a fraction of the non-held-out corpus tokens; FinPythia's efficient methods use 10%; dacp below 1 trains on a uniform random sample; tacp trains on all the task text and ignores it.", { type: 'float in (0, 1]', default: `1 for dacp and tacp, ${EFFICIENT_BUDGET} otherwise` }),
  embedder: doc(section(EmbedderSchema), 'Document embedder for task similarity (ets-dacp, ets-dacp-com).'),
  proxy_model: doc(str.optional(), 'Model that scores perplexity (eta-dacp with perplexity, ets-dacp-com); needed when model.init is a fresh preset, which cannot score.', { type: 'path', default: 'model.init' }),
  // Perplexity settles within a few hundred tokens; scoring cost is one forward pass over these.
  perplexity_tokens: doc(posInt.default(512), 'Tokens of each document scored for perplexity.'),
  temperature: doc(posNum.default(1), 'Soft sampling temperature.', { type: 'float > 0' }),
  seed: doc(nonNegInt.default(1234), 'Seed of sampling and of the dacp random subset.'),
});

export type EmbedderSpec = z.output<typeof EmbedderSchema>;
export type Sampling = z.output<typeof SelectionSchema>['sampling'];
/** After resolution: the budget settled from the method; proxy_model set where a metric scores perplexity. */
export type SelectionConfig = Settled<z.output<typeof SelectionSchema>, 'budget'>;
