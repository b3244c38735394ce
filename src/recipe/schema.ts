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

export const RawRecipeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name of letters, digits, ".", "_" or "-"').optional(),
  method: z.enum(METHODS),
  run_dir: str.optional(),
  data: z.strictObject({
    corpus: z.array(SourceSchema).min(1),
    pile_test: z.array(SourceSchema).optional(),
    tasks: listOf(z.enum(FIN_TASKS)).optional(),
    prepared_dir: str.optional(),
    shard_mb: posNum.optional(),
    fin_test_fraction: z.number().positive().lt(1).optional(),
    tokenizer: str.optional(),
  }),
  selection: section(
    z.strictObject({
      metric: str.optional(), // a task-free metric of the registry (select/metrics), checked in resolve
      sampling: z.enum(['hard', 'soft']).optional(),
      budget: z.number().positive().max(1).optional(),
      embedder: section(
        z.strictObject({
          kind: z.enum(['hashed', 'model', 'transformers']).optional(),
          dim: posInt.optional(),
          ngrams: z.number().int().min(1).max(3).optional(),
          model: str.optional(),
          max_tokens: posInt.optional(),
        }),
      ),
      proxy_model: str.optional(),
      perplexity_tokens: posInt.optional(),
      temperature: posNum.optional(),
      seed: nonNegInt.optional(),
    }),
  ),
  model: z.strictObject({ init: str, base_recipe: str.optional() }),
  train: section(
    z.strictObject({
      lr: posNum.optional(),
      min_lr: z.number().nonnegative().optional(),
      warmup: z.number().min(0).lt(1).optional(),
      schedule: z.enum(['cosine', 'constant']).optional(),
      beta1: z.number().min(0).lt(1).optional(),
      beta2: z.number().min(0).lt(1).optional(),
      eps: posNum.optional(),
      weight_decay: z.number().nonnegative().optional(),
      clip: z.number().nonnegative().optional(),
      batch_tokens: posInt.optional(),
      micro_batch: posInt.optional(),
      seq_len: z.number().int().min(2).optional(),
      epochs: posNum.optional(),
      max_tokens: posInt.optional(),
      max_steps: posInt.optional(),
      seed: nonNegInt.optional(),
      skip_nonfinite: z.boolean().optional(),
    }),
  ),
  monitor: section(
    z.strictObject({
      every: posInt.optional(),
      fin_test_tokens: nonNegInt.optional(),
      pile_test_tokens: nonNegInt.optional(),
      task_test_tokens: nonNegInt.optional(),
    }),
  ),
  checkpoint: section(z.strictObject({ every: posInt.optional(), keep: posInt.optional() })),
  engine: section(
    z.strictObject({
      kind: z.enum(ENGINE_KINDS).optional(),
      threads: nonNegInt.optional(),
      precision: z.enum(PRECISIONS).optional(),
      recompute: z.boolean().optional(),
    }),
  ),
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

function unwrap(t: z.ZodType): z.ZodType {
  for (;;) {
    const def = t._zod.def as { type: string; innerType?: z.ZodType; out?: z.ZodType };
    if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) t = def.innerType;
    else if (def.type === 'pipe' && def.out) t = def.out;
    else return t;
  }
}
