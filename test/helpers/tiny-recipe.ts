/**
 * A tiny, fast recipe over a small slice of the data kit, written as YAML into a temp dir, for
 * tests of every stage (prepare → select → train → eval). The model is a 2-layer, 64-wide
 * GPT-NeoX with the Pythia vocabulary, written as an HF directory (config.json + model.safetensors,
 * initialised from `modelSeed`) beside the recipe.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { dataDir } from '../../src/util/paths.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { initWeights } from '../../src/model/init.js';
import { saveModel } from '../../src/model/load.js';

export const TINY_CONFIG: NeoXConfig = {
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 256,
  rotary_pct: 0.25,
  rotary_emb_base: 10000,
  max_position_embeddings: 2048,
  vocab_size: 50304, // the 20B tokenizer's 50,277 ids, padded as Pythia does
  layer_norm_eps: 1e-5,
  hidden_act: 'gelu',
  use_parallel_residual: true,
  tie_word_embeddings: false,
  initializer_range: 0.02,
  bos_token_id: 0,
  eos_token_id: 0,
};

export interface TinyRecipeOptions {
  /** Recipe name (also the run directory name). */
  name?: string;
  method?: 'dacp' | 'tacp' | 'ets-dacp' | 'eta-dacp' | 'ets-dacp-com';
  /** Reuters SGML files of the kit to use as the domain corpus (default: one file, ~1000 docs). */
  reutersFiles?: string;
  /** Deep-merged over the generated recipe (e.g. { train: { max_steps: 4 } }). */
  overrides?: Record<string, unknown>;
  /** Directory to write into (default: a fresh temp dir). */
  dir?: string;
  /** Seed of the tiny model's initial weights (default 0). */
  modelSeed?: number;
}

export interface TinyRecipe {
  /** The recipe YAML file. */
  file: string;
  /** The directory holding it, the run dir (`<dir>/runs/<name>`) and the prepared data. */
  dir: string;
  runDir: string;
  /** The tiny model's HF directory. */
  modelDir: string;
  /** The plain object written as YAML (before defaults). */
  raw: Record<string, unknown>;
}

export async function writeTinyRecipe(o: TinyRecipeOptions = {}): Promise<TinyRecipe> {
  const dir = o.dir ?? mkdtempSync(path.join(os.tmpdir(), 'cpt-tiny-'));
  const name = o.name ?? 'tiny';
  const modelDir = path.join(dir, 'tiny-neox');
  mkdirSync(modelDir, { recursive: true });
  await saveModel(modelDir, TINY_CONFIG, initWeights(TINY_CONFIG, o.modelSeed ?? 0));
  const kit = dataDir();
  const raw: Record<string, unknown> = {
    name,
    method: o.method ?? 'dacp',
    run_dir: path.join(dir, 'runs', name),
    data: {
      corpus: [{ name: 'reuters', path: path.join(kit, 'corpus/fin/reuters21578'), format: 'reuters-sgml', include: o.reutersFiles ?? 'reut2-000.sgm', encoding: 'latin1' }],
      pile_test: [{ name: 'hamlet', path: path.join(kit, 'corpus/general/gutenberg_nltk/shakespeare-hamlet.txt'), format: 'text' }],
      tasks: ['fpb'],
      prepared_dir: path.join(dir, 'prepared'),
      fin_test_fraction: 0.05,
      tokenizer: path.join(kit, 'tokenizer/20B_tokenizer.json'),
    },
    selection: { budget: 1, seed: 7 },
    model: { init: modelDir },
    train: { lr: 3e-3, min_lr: 3e-4, warmup: 0.1, batch_tokens: 256, micro_batch: 4, seq_len: 32, max_steps: 12, seed: 11 },
    monitor: { every: 4, fin_test_tokens: 1024, pile_test_tokens: 1024 },
    checkpoint: { every: 4, keep: 3 },
    engine: { kind: 'tfjs', threads: 1 },
  };
  merge(raw, o.overrides ?? {});
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(raw));
  return { file, dir, runDir: raw.run_dir as string, modelDir, raw };
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      merge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else into[k] = v;
  }
}
