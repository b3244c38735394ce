/**
 * Recipe defaults. Optimiser, schedule and batch come from the Pythia training configs
 * (EleutherAI/pythia `models/*.yml`); learning rates by model size are `PYTHIA_LR`.
 */
import { FIN_TASKS, type FinTask } from './names.js';

export const DEFAULTS = {
  data: {
    /** Inside the data kit (`${CPT_DATA}`): the GPT-NeoX-20B tokenizer Pythia uses. */
    tokenizer: 'tokenizer/20B_tokenizer.json',
    shard_mb: 64,
    /** FinPythia holds out a small slice of the domain corpus as Fin-test. */
    fin_test_fraction: 0.001,
    tasks: [...FIN_TASKS] as FinTask[],
  },
  selection: {
    sampling: 'hard' as const,
    /** Efficient methods train on 10% of the domain tokens (FinPythia). DACP and TACP default to 1 (everything). */
    budget: 0.1,
    embedder: {
      kind: 'hashed' as const,
      /**
       * 4096 buckets: a document has a few hundred distinct uni/bi-grams, so in-document collisions stay
       * around k/(2·dim) ≈ 5%, and the random cross-term in a cosine is ~1/√dim ≈ 1.6% of the norms, far
       * below the similarity gaps we rank on; a dense float32 vector is 16 KiB, so embedding every document
       * of the data kit (~40k) fits in well under 1 GiB.
       */
      dim: 4096,
      ngrams: 2,
      max_tokens: 512,
    },
    /** Perplexity settles within a few hundred tokens; scoring cost is one forward pass over these. */
    perplexity_tokens: 512,
    temperature: 1,
    seed: 1234,
  },
  train: {
    warmup: 0.01,
    schedule: 'cosine' as const,
    min_lr_ratio: 0.1,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weight_decay: 0.1,
    clip: 1.0,
    /** 1024 sequences × 2048 tokens. */
    batch_tokens: 2_097_152,
    /** One sequence per engine call: the lowest memory on a CPU engine; the batch is reached by accumulation. */
    micro_batch: 1,
    seq_len: 2048,
    epochs: 1,
    seed: 1234,
    skip_nonfinite: false,
  },
  monitor: {
    every: 100,
    /** 512 × 2048 tokens each: both evaluations cost ~1/3 of one training step, every 100 steps. */
    fin_test_tokens: 1_048_576,
    pile_test_tokens: 1_048_576,
    /** Off unless asked for: the task texts are short, so each monitor step scores them one by one. */
    task_test_tokens: 0,
  },
  checkpoint: { every: 250, keep: 3 },
  engine: { kind: 'native' as const, threads: 0, recompute: false },
} as const;

