/**
 * The recipe file: the top-level keys, and each stage's section as that stage declares it
 * (data/recipe.ts, select/recipe.ts, model/recipe.ts, train/recipe.ts, monitor/recipe.ts,
 * engine/recipe.ts) with its keys' meaning and constant defaults. Every object is strict (an
 * unknown key is an error). Defaults computed from other keys, and rules across sections, are
 * resolve.ts's.
 */
import { z } from 'zod';
import { DataSchema, SourceSchema } from '../data/recipe.js';
import { EngineSchema } from '../engine/recipe.js';
import { ModelSchema } from '../model/recipe.js';
import { MonitorSchema } from '../monitor/recipe.js';
import { SelectionSchema } from '../select/recipe.js';
import { CheckpointSchema, TrainSchema } from '../train/recipe.js';
import { doc, section, str } from './keys.js';
import { METHODS } from './names.js';

export { METHODS } from './names.js';
export type { KeyDoc } from './keys.js';

export const RawRecipeSchema = z.strictObject({
  name: doc(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name of letters, digits, ".", "_" or "-"').optional(), 'Run name.', { default: 'the file name without .yaml' }),
  method: doc(z.enum(METHODS), 'Training method.'),
  run_dir: doc(str.optional(), 'Where checkpoints, metrics and the resolved recipe go.', { type: 'path', default: 'checkpoints/<name>' }),
  data: doc(DataSchema, 'Inputs: the domain corpus, the general-domain held-out text, the tasks and the tokenizer.'),
  selection: doc(section(SelectionSchema), 'Which documents to train on.'),
  model: doc(ModelSchema, 'The model continued.'),
  train: doc(section(TrainSchema), "Optimiser and schedule: Pythia's own (AdamW, cosine to 10% with 1% warmup) unless noted."),
  monitor: doc(section(MonitorSchema), 'Fin-test, Pile-test and task-test losses during training.'),
  checkpoint: doc(section(CheckpointSchema), 'Checkpoints: written atomically, verified on resume.'),
  engine: doc(section(EngineSchema), 'Where the model trains.'),
});

/** The recipe as parsed: constant defaults filled, computed ones (paths, lr, budget, precision) still open. */
export type RawRecipe = z.output<typeof RawRecipeSchema>;
export type RawSource = z.output<typeof SourceSchema>;

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
    if ((def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable') && def.innerType) t = def.innerType;
    else if (def.type === 'pipe' && def.out) t = def.out;
    else return t;
  }
}
