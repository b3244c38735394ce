/** The recipe's `model:` section: the model continued. */
import { z } from 'zod';
import { doc, str } from '../recipe/keys.js';

export const ModelSchema = z.strictObject({
  init: doc(str, 'A Pythia preset for a fresh init (pythia-14m … pythia-12b), or a Hugging Face GPT-NeoX model directory (config.json + weights).'),
  // `cpt train` and `cpt select` run it first when `init` does not exist yet.
  base_recipe: doc(str.optional(), 'Recipe that writes `init` (its final/): `cpt train` runs it first when `init` is missing.', { type: 'path', default: 'none' }),
});

export type ModelSpec = z.output<typeof ModelSchema>;
