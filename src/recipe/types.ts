/**
 * A resolved recipe: every default filled in, every path absolute. Produced only by
 * `loadRecipe` (src/recipe/load.ts), which validates YAML against these types.
 */
import type { EngineKind, Precision } from '../engine/engine.js';

import type { FinTask, InputFormat, Method } from './names.js';

export type { FinTask, InputFormat, Method };
export type Sampling = 'hard' | 'soft';

/** One raw input of `cpt prepare`: a file or a directory (walked recursively, sorted). */
export interface SourceSpec {
  /** Label stored in each document's `source` column (default: last path component). */
  name: string;
  path: string;
  format: InputFormat;
  /** jsonl/json/csv: field (JSON path like `item1` or `a.b`) holding the text; several → one doc per field. */
  fields: string[];
  /** jsonl/json/csv: field holding the document id (default: file name + record index). */
  id_field?: string;
  /** text: document separator as a regex source (default: one or more blank lines). */
  separator?: string;
  /** csv: delimiter (default ","). */
  delimiter?: string;
  /** Files to take inside a directory (glob on the file name, e.g. `*.sgm`). */
  include?: string;
  /** Text encoding (default utf-8; latin1 for Reuters SGML). */
  encoding: 'utf-8' | 'latin1';
  /** Skip bad records (counted in the manifest) instead of failing. */
  skip_bad: boolean;
}

export interface EmbedderSpec {
  /** hashed: hashed word uni/bi-gram vectors; model: mean-pooled hidden states of `model`; transformers: a local transformers.js feature-extraction directory. */
  kind: 'hashed' | 'model' | 'transformers';
  dim: number; // hashed
  ngrams: number; // hashed: 1 = unigrams, 2 = uni+bigrams
  model?: string; // model / transformers: directory
  max_tokens: number; // model: tokens per document embedded
}

export interface Recipe {
  /** Recipe file it came from (absolute), for error messages. */
  file: string;
  name: string;
  method: Method;
  /** Run directory (default checkpoints/<name>). */
  run_dir: string;
  data: {
    /** Domain corpus: raw sources prepared into shards. */
    corpus: SourceSpec[];
    /** General-domain held-out text for the Pile-test loss. */
    pile_test: SourceSpec[];
    /** Task datasets whose (train-split, unlabeled) text defines the task for TACP/ETS-DACP. */
    tasks: FinTask[];
    /** Where prepared shards are kept (default checkpoints/data/<name of corpus>). */
    prepared_dir: string;
    shard_mb: number;
    /** Fraction of domain documents held out as Fin-test by a stable hash of the id. */
    fin_test_fraction: number;
    tokenizer: string; // path to tokenizer.json
  };
  selection: {
    /** eta-dacp only: a task-free metric of the selection registry (perplexity, entropy). */
    metric?: string;
    sampling: Sampling;
    /** Token budget as a fraction of the (non-held-out) corpus tokens. */
    budget: number;
    embedder: EmbedderSpec;
    /** Proxy model for perplexity: HF directory or run checkpoint directory. */
    proxy_model?: string;
    /** Tokens of each document scored for perplexity. */
    perplexity_tokens: number;
    /** Soft sampling: weights ∝ normalised score ^ (1 / temperature). */
    temperature: number;
    seed: number;
  };
  model: {
    /** Preset name (pythia-14m … pythia-12b) for a fresh init, or an HF model directory. */
    init: string;
    /**
     * A recipe whose `final/` model is `init` (e.g. a general-domain base run). `cpt train` and
     * `cpt select` run it first when `init` does not exist yet.
     */
    base_recipe?: string;
  };
  train: {
    lr: number;
    min_lr: number;
    /** Warmup as a fraction of total steps (Pythia: 0.01). */
    warmup: number;
    schedule: 'cosine' | 'constant';
    beta1: number;
    beta2: number;
    eps: number;
    weight_decay: number;
    clip: number;
    /** Global batch in tokens (rounded to whole sequences). */
    batch_tokens: number;
    micro_batch: number; // sequences per engine call
    seq_len: number;
    epochs: number;
    /** Stop after this many tokens (default: one pass over the selected data, times epochs). */
    max_tokens?: number;
    max_steps?: number;
    seed: number;
    /** A step whose loss or gradient norm is not finite is skipped (and counted) instead of stopping the run. */
    skip_nonfinite: boolean;
  };
  monitor: {
    every: number; // steps
    fin_test_tokens: number;
    pile_test_tokens: number;
    /** Task-test loss: tokens of the tasks' test-split text scored at each monitor step (0 = off). */
    task_test_tokens: number;
  };
  checkpoint: {
    every: number; // steps
    keep: number;
  };
  engine: {
    kind: EngineKind;
    threads: number; // 0 = all cores
    /**
     * Matmul precision: fp32, or bf16 operands with fp32 accumulation (native: AMX or
     * AVX512-BF16; cuda: tensor cores). Default: the engine's own (native fp32, cuda bf16).
     */
    precision: Precision;
    /** cuda: recompute each layer's activations in backward instead of keeping them. */
    recompute: boolean;
  };
}
