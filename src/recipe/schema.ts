/**
 * The recipe file as written: every key optional except what has no sensible default, every object
 * strict (an unknown key is an error). Defaults and cross-field rules live in resolve.ts.
 */
import { z } from 'zod';
import { ENGINE_KINDS, PRECISIONS } from '../engine/registry.js';
import { FIN_TASKS, FORMATS, METHODS } from './names.js';

const posNum = z.number().positive();
const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const str = z.string().min(1);
/**
 * An optional section; an empty one (`monitor:` with every key commented out, which YAML reads as
 * null) counts as absent.
 */
const section = <T extends z.ZodType>(inner: T) => z.preprocess((v) => (v === null ? undefined : v), inner.optional());
/** A list, or a single item written on its own. */
const listOf = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(item));

export { METHODS, FORMATS } from './names.js';

const FIELD_FORMATS = new Set<string>(['json', 'jsonl', 'csv']);

export const SourceSchema = z.strictObject({
  name: str.optional(),
  path: str,
  format: z.enum(FORMATS),
  fields: listOf(str).optional(),
  id_field: str.optional(),
  separator: str.optional(),
  delimiter: z.string().length(1).optional(),
  include: str.optional(),
  encoding: z.enum(['utf-8', 'latin1']).optional(),
  skip_bad: z.boolean().optional(),
}).superRefine((s, ctx) => {
  // Format-specific keys, checked with the schema so they are reported with every other problem.
  const takesFields = FIELD_FORMATS.has(s.format);
  if (takesFields && !s.fields?.length) ctx.addIssue({ code: 'custom', path: ['fields'], message: `required for format ${s.format}: the field(s) holding the text, e.g. [text]` });
  if (!takesFields) {
    if (s.fields?.length) ctx.addIssue({ code: 'custom', path: ['fields'], message: `only for formats json, jsonl or csv (format is ${s.format})` });
    if (s.id_field !== undefined) ctx.addIssue({ code: 'custom', path: ['id_field'], message: `only for formats json, jsonl or csv (format is ${s.format})` });
  }
  if (s.separator !== undefined) {
    if (s.format !== 'text') ctx.addIssue({ code: 'custom', path: ['separator'], message: `only for format text (format is ${s.format})` });
    else {
      try {
        new RegExp(s.separator);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['separator'], message: `expected a regular expression (${(e as Error).message})` });
      }
    }
  }
  if (s.delimiter !== undefined && s.format !== 'csv') ctx.addIssue({ code: 'custom', path: ['delimiter'], message: `only for format csv (format is ${s.format})` });
});

/**
 * What a key means, for the comments of every shipped recipe (generated from here by
 * `npm run recipes:comments`, checked by a test): a description, and where the schema cannot say
 * it, the type and default as they read (otherwise derived from the schema and defaults.ts).
 */
export interface KeyDoc {
  description: string;
  type?: string;
  default?: string;
}
const doc = <T extends z.ZodType>(t: T, description: string, o: Omit<KeyDoc, 'description'> = {}): T => t.meta({ description, ...o });

export const RawRecipeSchema = z.strictObject({
  name: doc(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name of letters, digits, ".", "_" or "-"').optional(), 'Run name.', { default: 'the file name without .yaml' }),
  method: doc(z.enum(METHODS), 'Training method.'),
  run_dir: doc(str.optional(), 'Where checkpoints, metrics and the resolved recipe go.', { type: 'path', default: 'checkpoints/<name>' }),
  data: doc(z.strictObject({
    corpus: doc(z.array(SourceSchema).min(1), 'Domain corpus: raw inputs that `cpt prepare` turns into shards. Each source: path (file or directory, walked recursively and sorted), format (reuters-sgml | wikiextractor | jsonl | json | text | csv), name (default: last path component), include (glob on the file name), fields (json/jsonl/csv: field(s) holding the text; several → one doc per field), id_field, separator (text: regex, default blank lines), delimiter (csv), encoding (utf-8 | latin1; default latin1 for reuters-sgml, else utf-8), skip_bad (default false).', { type: 'list of sources' }),
    pile_test: doc(z.array(SourceSchema).optional(), 'General-domain held-out text for the Pile-test loss (forgetting).', { type: 'list of sources', default: '[]' }),
    tasks: doc(listOf(z.enum(FIN_TASKS)).optional(), 'Tasks whose train-split text defines the target for tacp / ets-dacp / ets-dacp-com, and which `cpt eval` scores.', { default: 'all four' }),
    prepared_dir: doc(str.optional(), 'Prepared shards, shared by every recipe with the same corpus, pile_test and tokenizer.', { type: 'path', default: 'checkpoints/data/<source names>-<hash of sources and tokenizer>' }),
    shard_mb: doc(posNum.optional(), 'Shard size in MB.'),
    fin_test_fraction: doc(z.number().positive().lt(1).optional(), 'Fraction of domain documents held out as Fin-test, by a stable hash of the document id.', { type: 'float in (0, 1)' }),
    tokenizer: doc(str.optional(), 'GPT-NeoX-20B tokenizer used by Pythia.', { type: 'path', default: '${CPT_DATA}/tokenizer/20B_tokenizer.json' }),
  }), 'Inputs: the domain corpus, the general-domain held-out text, the tasks and the tokenizer.'),
  selection: doc(section(
    z.strictObject({
      // A task-free metric of the registry (recipe/names), checked in resolve.
      metric: doc(str.optional(), 'eta-dacp: the task-free metric to rank by.', { type: 'perplexity | entropy', default: 'none (required by eta-dacp)' }),
      sampling: doc(z.enum(['hard', 'soft']).optional(), 'hard: take the top-scoring documents up to the budget; soft: sample without replacement with probability ∝ normalised score^(1/temperature).'),
      budget: doc(z.number().positive().max(1).optional(), "Token budget as a fraction of the non-held-out corpus tokens; FinPythia's efficient methods use 10%; dacp below 1 trains on a uniform random sample; tacp trains on all the task text and ignores it.", { type: 'float in (0, 1]', default: '1 for dacp and tacp, 0.1 otherwise' }),
      embedder: doc(section(
        z.strictObject({
          kind: doc(z.enum(['hashed', 'model', 'transformers']).optional(), 'hashed: hashed uni/bi-gram counts (no model needed); model: mean-pooled hidden states of `model`; transformers: a local transformers.js feature-extraction directory in `model`.'),
          dim: doc(posInt.optional(), 'hashed: buckets.'),
          ngrams: doc(z.number().int().min(1).max(3).optional(), 'hashed: 1 = unigrams, 2 = uni+bigrams.', { type: 'int in 1..3' }),
          model: doc(str.optional(), 'model / transformers: the model directory.', { type: 'path', default: 'none' }),
          max_tokens: doc(posInt.optional(), 'model: tokens of each document embedded.'),
        }),
      ), 'Document embedder for task similarity (ets-dacp, ets-dacp-com).'),
      proxy_model: doc(str.optional(), 'Model that scores perplexity (eta-dacp with perplexity, ets-dacp-com); needed when model.init is a fresh preset, which cannot score.', { type: 'path', default: 'model.init' }),
      perplexity_tokens: doc(posInt.optional(), 'Tokens of each document scored for perplexity.'),
      temperature: doc(posNum.optional(), 'Soft sampling temperature.', { type: 'float > 0' }),
      seed: doc(nonNegInt.optional(), 'Seed of sampling and of the dacp random subset.'),
    }),
  ), 'Which documents to train on.'),
  model: doc(z.strictObject({
    init: doc(str, 'A Pythia preset for a fresh init (pythia-14m … pythia-12b), or a Hugging Face GPT-NeoX model directory (config.json + weights).'),
    base_recipe: doc(str.optional(), 'Recipe that writes `init` (its final/): `cpt train` runs it first when `init` is missing.', { type: 'path', default: 'none' }),
  }), 'The model continued.'),
  train: doc(section(
    z.strictObject({
      lr: doc(posNum.optional(), 'Peak learning rate.', { type: 'float > 0', default: "Pythia's for the model size" }),
      min_lr: doc(z.number().nonnegative().optional(), 'Final learning rate.', { type: 'float <= lr', default: '0.1 × lr' }),
      warmup: doc(z.number().min(0).lt(1).optional(), 'Warmup as a fraction of total steps.', { type: 'float in [0, 1)' }),
      schedule: doc(z.enum(['cosine', 'constant']).optional(), 'Learning-rate decay after warmup.'),
      beta1: doc(z.number().min(0).lt(1).optional(), 'Adam beta1.', { type: 'float in [0, 1)' }),
      beta2: doc(z.number().min(0).lt(1).optional(), 'Adam beta2.', { type: 'float in [0, 1)' }),
      eps: doc(posNum.optional(), 'Adam epsilon.', { type: 'float > 0' }),
      weight_decay: doc(z.number().nonnegative().optional(), 'Decoupled weight decay on 2-D weights only.'),
      clip: doc(z.number().nonnegative().optional(), 'Gradient-norm clip; 0 turns it off.'),
      batch_tokens: doc(posInt.optional(), 'Global batch in tokens, a multiple of seq_len × micro_batch (else rounded, with a note).'),
      micro_batch: doc(posInt.optional(), 'Sequences per engine call; the batch is reached by accumulation.'),
      seq_len: doc(z.number().int().min(2).optional(), 'Tokens per sequence.', { type: "int <= the model's max_position_embeddings" }),
      epochs: doc(posNum.optional(), 'Passes over the selected data.'),
      max_tokens: doc(posInt.optional(), 'Stop after this many tokens.', { default: 'one pass over the selection × epochs' }),
      max_steps: doc(posInt.optional(), 'Stop after this many optimizer steps.', { default: 'none' }),
      seed: doc(nonNegInt.optional(), 'Seed of init, data order and sampling in training.'),
      skip_nonfinite: doc(z.boolean().optional(), 'Skip (and count) a step whose loss or gradient norm is not finite instead of stopping the run.'),
    }),
  ), "Optimiser and schedule: Pythia's own (AdamW, cosine to 10% with 1% warmup) unless noted."),
  monitor: doc(section(
    z.strictObject({
      every: doc(posInt.optional(), 'Evaluate every this many steps.'),
      fin_test_tokens: doc(nonNegInt.optional(), 'Tokens of the Fin-test split evaluated each time.'),
      pile_test_tokens: doc(nonNegInt.optional(), 'Tokens of the Pile-test text evaluated each time.'),
      task_test_tokens: doc(nonNegInt.optional(), "Task-test loss: tokens of the tasks' test-split text scored each time, the measure of the paper's question (does the selection help the tasks?); 0 turns it off."),
    }),
  ), 'Fin-test, Pile-test and task-test losses during training.'),
  checkpoint: doc(section(z.strictObject({
    every: doc(posInt.optional(), 'Save every this many steps (and at the end).'),
    keep: doc(posInt.optional(), 'Checkpoints kept, newest first.'),
  })), 'Checkpoints: written atomically, verified on resume.'),
  engine: doc(section(
    z.strictObject({
      kind: doc(z.enum(ENGINE_KINDS).optional(), 'native: the C++ CPU engine; cuda: one NVIDIA GPU (unverified on a GPU yet, see README); tfjs: the TensorFlow.js reference.'),
      threads: doc(nonNegInt.optional(), 'Threads; 0 = all cores.'),
      precision: doc(z.enum(PRECISIONS).optional(), 'Matmul precision: fp32, or bf16 operands with fp32 accumulation (native: Intel AMX or AVX512-BF16, fp32 where the CPU has neither; cuda: tensor cores).', { default: 'fp32 on native and tfjs, bf16 on cuda' }),
      recompute: doc(z.boolean().optional(), "cuda: keep only each layer's input and recompute its activations in backward (~1/3 more compute, a fraction of the activation memory)."),
    }),
  ), 'Where the model trains.'),
});

export type RawRecipe = z.infer<typeof RawRecipeSchema>;
export type RawSource = z.infer<typeof SourceSchema>;

/** The keys a strict object in `schema` allows at `path` (array indices skipped), for typo suggestions. */
export function keysAt(path: (string | number)[], schema: z.ZodType = RawRecipeSchema): string[] {
  let node = unwrap(schema);
  for (const p of path) {
    const def = node._zod.def as { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType };
    if (typeof p === 'number') {
      if (def.type !== 'array' || !def.element) return [];
      node = unwrap(def.element);
    } else {
      if (def.type !== 'object' || !def.shape?.[p]) return [];
      node = unwrap(def.shape[p]);
    }
  }
  const def = node._zod.def as { type: string; shape?: Record<string, z.ZodType> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** A schema without its optional/default/nullable wrappers and preprocess pipes: the type it checks. */
export function unwrap(t: z.ZodType): z.ZodType {
  for (;;) {
    const def = t._zod.def as { type: string; innerType?: z.ZodType; out?: z.ZodType };
    if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) t = def.innerType;
    else if (def.type === 'pipe' && def.out) t = def.out;
    else return t;
  }
}
