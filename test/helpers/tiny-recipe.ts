/**
 * A tiny, fast recipe over a small slice of the data kit, written as YAML into a temp dir, for
 * tests of every stage (prepare → select → train → eval). The model is a 2-layer, 64-wide
 * GPT-NeoX written as an HF directory (config.json + model.safetensors, initialised from
 * `modelSeed`) beside the recipe. By default the tokenizer is the kit's GPT-NeoX tokenizer cut to
 * its byte alphabet and first 500 merges (757 ids), so the output layer is 768 wide instead of
 * 50,304 and a training step takes milliseconds even on the pure-JS engine.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { dataDir } from '../../src/util/paths.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { initWeights } from '../../src/model/init.js';
import { saveModel } from '../../src/model/load.js';

/** The tiny model; vocab_size is set from the tokenizer (768 for the tiny one, 50304 for Pythia's). */
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
  /** 'tiny' (default): 500-merge cut of the kit tokenizer; 'pythia': the full 20B tokenizer (slow on tfjs). */
  tokenizer?: 'tiny' | 'pythia';
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
  const kit = dataDir();
  const pythiaTok = path.join(kit, 'tokenizer/20B_tokenizer.json');
  const tokenizer = o.tokenizer === 'pythia' ? pythiaTok : path.join(dir, 'tiny-tokenizer.json');
  const vocab = o.tokenizer === 'pythia' ? 50304 : writeTinyTokenizer(pythiaTok, tokenizer, 500);
  const config = { ...TINY_CONFIG, vocab_size: vocab };
  const modelDir = path.join(dir, 'tiny-neox');
  mkdirSync(modelDir, { recursive: true });
  await saveModel(modelDir, config, initWeights(config, o.modelSeed ?? 0));
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
      tokenizer,
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

/**
 * Writes `out`: the GPT-NeoX tokenizer keeping `<|endoftext|>` (id 0), the 256 byte symbols and
 * the first `merges` merges (each merge only uses bytes and earlier merges, so the cut is closed).
 * Returns the model vocab size to use: ids rounded up to a multiple of 128.
 */
export function writeTinyTokenizer(src: string, out: string, merges: number): number {
  const j = JSON.parse(readFileSync(src, 'utf8')) as {
    added_tokens: { id: number; content: string }[];
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] } & Record<string, unknown>;
  } & Record<string, unknown>;
  const keep = j.model.merges.slice(0, merges).map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  let next = 1; // 0 is <|endoftext|>
  for (const [tok, id] of Object.entries(j.model.vocab).sort((a, b) => a[1] - b[1])) if ([...tok].length === 1 && id < 256 + 1) vocab[tok] = next++;
  for (const [a, b] of keep) if (!(a + b in vocab)) vocab[a + b] = next++;
  const eos = j.added_tokens.find((t) => t.content === '<|endoftext|>')!;
  const tiny = { ...j, added_tokens: [{ ...eos, id: 0 }], model: { ...j.model, vocab, merges: keep.map(([a, b]) => `${a} ${b}`) } };
  writeFileSync(out, JSON.stringify(tiny));
  return Math.ceil(next / 128) * 128;
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      merge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else into[k] = v;
  }
}
