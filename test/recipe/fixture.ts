/** A small valid recipe (sec10k JSON corpus, wikitext pile_test, tiny batch) for the recipe tests. */
import path from 'node:path';
import { parseRecipe } from '../../src/recipe/load.js';
import { ROOT } from '../../src/util/paths.js';

export const FILE = path.join(ROOT, 'recipes', 'under-test.yaml');
export const base = (extra = '', init = 'pythia-14m', method = 'ets-dacp') => `method: ${method}
data:
  corpus:
    - path: \${CPT_DATA}/corpus/fin/sec10k_2023
      format: json
      fields: [item1, item7]
  pile_test:
    - path: \${CPT_DATA}/corpus/general/wikitext-2/test.txt
      format: text
model:
  init: ${init}
train:
  seq_len: 128
  micro_batch: 4
  batch_tokens: 4096
  max_tokens: 40960
${extra}`;
export const load = (text: string) => parseRecipe(text, FILE).recipe;

