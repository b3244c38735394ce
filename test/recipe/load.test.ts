import { mkdtempSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHIA_LR } from '../../src/model/presets.js';
import { loadRecipe, loadRecipeDetailed, parseRecipe } from '../../src/recipe/load.js';
import { etaMetricNames } from '../../src/select/metrics/registry.js';
import { UserError } from '../../src/util/errors.js';
import type { Recipe } from '../../src/recipe/types.js';
import { ROOT, dataDir } from '../../src/util/paths.js';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';

const FILE = path.join(ROOT, 'recipes', 'under-test.yaml');
const SHOWN = 'recipes/under-test.yaml';

/** A valid recipe, as YAML, with `extra` lines appended under the given top-level blocks. */
function yaml(method = 'ets-dacp', init = 'pythia-1b', extra = ''): string {
  return `method: ${method}
data:
  corpus:
    - path: \${CPT_DATA}/corpus/fin/reuters21578
      format: reuters-sgml
      include: "*.sgm"
model:
  init: ${init}
${extra}`;
}

function errorOf(text: string, opts = {}): string {
  try {
    parseRecipe(text, FILE, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected the recipe to be refused');
}

describe('reproduction recipes (recipes/repro/)', () => {
  const dir = path.join(ROOT, 'recipes', 'repro');
  const runs = ['dacp', 'tacp', ...['ets-dacp', 'eta-dacp-ppl', 'eta-dacp-ent', 'ets-dacp-com'].flatMap((m) => [`${m}-hard`, `${m}-soft`])];

  it('a base and ten runs continued from it with identical optimiser, data and held-out settings', async () => {
    expect(readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()).toEqual(['base', ...runs].map((n) => `${n}.yaml`).sort());
    const base = await loadRecipe(path.join(dir, 'base.yaml'));
    const all = await Promise.all(runs.map((n) => loadRecipe(path.join(dir, `${n}.yaml`))));
    // monitor.every differs on purpose (DACP's 661 steps are measured every 100, the 66-step runs every 25).
    const shared = (r: Recipe) => ({ train: r.train, monitor: { ...r.monitor, every: 0 }, corpus: r.data.corpus, pile_test: r.data.pile_test, tasks: r.data.tasks, engine: r.engine, tokenizer: r.data.tokenizer });
    for (const r of all) {
      expect(r.model.init).toBe(path.join(base.run_dir, 'final'));
      expect(r.model.base_recipe).toBe(base.file);
      expect(shared(r)).toEqual(shared(all[0]));
      expect(r.train.epochs).toBe(1);
      const name = path.basename(r.file, '.yaml');
      if (name === 'dacp') expect(r.selection.budget).toBe(1);
      else if (name !== 'tacp') {
        expect(r.selection.budget).toBe(0.1);
        expect(r.selection.sampling).toBe(name.endsWith('-soft') ? 'soft' : 'hard');
      }
    }
  });
});

describe('shipped recipes', () => {
  const files = readdirSync(path.join(ROOT, 'recipes')).filter((f) => f.endsWith('.yaml'));

  it('ships every method × size, plus the tiny base model', () => {
    for (const m of ['dacp', 'tacp', 'ets-dacp', 'eta-dacp-ppl', 'eta-dacp-ent', 'ets-dacp-com'])
      for (const s of ['1b', '6.9b', 'tiny']) expect(files).toContain(`${m}-${s}.yaml`);
    expect(files).toContain('pythia-14m-base.yaml');
  });

  it.each(files)('%s resolves', async (f) => {
    const { recipe: r, notes } = await loadRecipeDetailed(path.join(ROOT, 'recipes', f));
    expect(r.name).toBe(f.replace(/\.yaml$/, ''));
    expect(path.isAbsolute(r.run_dir) && path.isAbsolute(r.data.prepared_dir) && path.isAbsolute(r.data.tokenizer)).toBe(true);
    for (const s of [...r.data.corpus, ...r.data.pile_test]) expect(s.path.startsWith(dataDir())).toBe(true);
    expect(r.train.batch_tokens % (r.train.seq_len * r.train.micro_batch)).toBe(0);
    expect(notes.filter((n) => /rounded|not a multiple|unused/.test(n))).toEqual([]); // shipped files need no corrections
    const size = f.match(/-(1b|6\.9b|tiny)\.yaml$/)?.[1];
    if (size === '1b' || size === '6.9b') {
      expect(r.train.lr).toBe(PYTHIA_LR[size]);
      expect(r.train.seq_len).toBe(2048);
      expect(r.train.batch_tokens).toBe(2_097_152);
      // The jobs the product is named for run on the GPU engine, in bf16.
      expect(r.engine).toMatchObject({ kind: 'cuda', precision: 'bf16', recompute: size === '6.9b' });
    }
    if (size === 'tiny') {
      expect(r.train.seq_len).toBeLessThanOrEqual(256);
      expect(r.train.max_tokens).toBeLessThanOrEqual(500_000);
      expect(r.engine.kind).toBe('native');
    }
    if (r.method === 'eta-dacp') expect(r.selection.metric).toBe(f.includes('-ppl-') ? 'perplexity' : 'entropy');
    if (r.selection.metric === 'perplexity' || r.method === 'ets-dacp-com') expect(r.selection.proxy_model).toBeDefined();
  });

  it('recipes over the same corpus share one prepared directory', async () => {
    const dirs = new Set<string>();
    for (const f of files.filter((f) => f !== 'pythia-14m-base.yaml')) dirs.add((await loadRecipe(path.join(ROOT, 'recipes', f))).data.prepared_dir);
    expect(dirs.size).toBe(1);
    const base = await loadRecipe(path.join(ROOT, 'recipes', 'pythia-14m-base.yaml'));
    expect(dirs.has(base.data.prepared_dir)).toBe(false);
  });

  it("the test helper's tiny recipe resolves", async () => {
    const t = await writeTinyRecipe();
    const r = await loadRecipe(t.file);
    expect(r.model.init).toBe(t.modelDir);
    expect(r.train.lr).toBe(3e-3);
  });
});

describe('defaults', () => {
  it("are Pythia's", () => {
    const { recipe: r } = parseRecipe(yaml('ets-dacp', 'pythia-1b'), FILE);
    // Pythia's values (keys that are not Pythia's, like skip_nonfinite, are the schema's to add)
    expect(r.train).toMatchObject({
      lr: 3e-4, min_lr: 3e-5, warmup: 0.01, schedule: 'cosine', beta1: 0.9, beta2: 0.95, eps: 1e-8,
      weight_decay: 0.1, clip: 1, batch_tokens: 2_097_152, micro_batch: 1, seq_len: 2048, epochs: 1, seed: 1234, skip_nonfinite: false,
    });
    expect(r.selection.budget).toBe(0.1);
    expect(r.data.fin_test_fraction).toBe(0.001);
    expect(r.data.tasks).toEqual(['fpb', 'fiqa_sa', 'headline', 'ner']);
    expect(r.data.tokenizer).toBe(path.join(dataDir(), 'tokenizer/20B_tokenizer.json'));
    expect(r.engine).toMatchObject({ kind: 'native', threads: 0, precision: 'fp32', recompute: false });
    expect(r.run_dir).toBe(path.join(ROOT, 'checkpoints', 'under-test'));
    expect(path.dirname(r.data.prepared_dir)).toBe(path.join(ROOT, 'checkpoints', 'data'));
    expect(r.data.corpus[0]).toMatchObject({ name: 'reuters21578', encoding: 'latin1', skip_bad: false, fields: [] });
  });

  it('take the learning rate from the model size', () => {
    for (const size of ['14m', '410m', '6.9b', '12b']) {
      const { recipe: r } = parseRecipe(yaml('dacp', `pythia-${size}`), FILE);
      expect(r.train.lr).toBe(PYTHIA_LR[size]);
      expect(r.train.min_lr).toBeCloseTo(PYTHIA_LR[size] / 10, 15);
    }
    const dir = parseRecipe(yaml('dacp', 'checkpoints/models/pythia-2.8b-deduped'), FILE).recipe;
    expect(dir.train.lr).toBe(PYTHIA_LR['2.8b']);
    expect(dir.model.init).toBe(path.join(ROOT, 'checkpoints/models/pythia-2.8b-deduped'));
  });

  it('train on everything for dacp and tacp', () => {
    expect(parseRecipe(yaml('dacp'), FILE).recipe.selection.budget).toBe(1);
    expect(parseRecipe(yaml('tacp'), FILE).recipe.selection.budget).toBe(1);
  });

  it('round batch_tokens to whole micro-batches, with a note', () => {
    const r = parseRecipe(yaml('dacp', 'pythia-14m', 'train:\n  seq_len: 128\n  micro_batch: 3\n  batch_tokens: 1000\n'), FILE);
    expect(r.recipe.train.batch_tokens).toBe(1152); // 3 × 384: the nearest multiple of 3 × 128
    expect(r.notes.join('\n')).toMatch(/recipes\/under-test\.yaml:\d+ train\.batch_tokens: 1000 is not a multiple of seq_len × micro_batch \(128 × 3\); using 1152/);
  });

  it('use the base model as the perplexity proxy', () => {
    const r = parseRecipe(yaml('eta-dacp', 'checkpoints/models/pythia-1b', 'selection:\n  metric: perplexity\n'), FILE).recipe;
    expect(r.selection.proxy_model).toBe(r.model.init);
  });
});

describe('interpolation', () => {
  it('${CPT_DATA} is the data kit directory', () => {
    const r = parseRecipe(yaml(), FILE, { dataDir: '/somewhere/kit' }).recipe;
    expect(r.data.corpus[0].path).toBe('/somewhere/kit/corpus/fin/reuters21578');
    expect(r.data.tokenizer).toBe('/somewhere/kit/tokenizer/20B_tokenizer.json');
  });

  it('${VAR}, ${VAR:-fallback} and $${ escapes', () => {
    const extra = 'run_dir: ${RUNS}/x\nname: ${NAME:-fallback}\nselection:\n  embedder:\n    kind: transformers\n    model: /m/$${literal}\n';
    const r = parseRecipe(yaml('ets-dacp', 'pythia-14m', extra), FILE, { env: { RUNS: '/runs' } }).recipe;
    expect(r.run_dir).toBe('/runs/x');
    expect(r.name).toBe('fallback');
    expect(r.selection.embedder.model).toBe('/m/${literal}');
  });

  it('an unset variable is an error at its line', () => {
    const msg = errorOf(yaml('dacp', 'pythia-14m', 'run_dir: ${NO_SUCH_VAR_CPT}/x\n'));
    expect(msg).toBe(`${SHOWN}:9 run_dir: \${NO_SUCH_VAR_CPT} is not set (set the environment variable, or write \${NO_SUCH_VAR_CPT:-default})`);
  });
});

describe('errors', () => {
  it('unknown key, with the closest valid key', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  lrr: 0.001\n'))).toBe(`${SHOWN}:10 train.lrr: unknown key (did you mean "lr"?)`);
    expect(errorOf(yaml('dacp', 'pythia-14m', 'trian:\n  lr: 0.001\n'))).toBe(`${SHOWN}:9 trian: unknown key (did you mean "train"?)`);
  });

  it('unknown key inside a source', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m').replace('include:', 'incldue:'))).toBe(`${SHOWN}:6 data.corpus[0].incldue: unknown key (did you mean "include"?)`);
  });

  it('a bad run name', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m', 'name: my run/1\n'))).toBe(`${SHOWN}:9 name: expected a name of letters, digits, ".", "_" or "-", found "my run/1"`);
  });

  it('an empty section is the same as no section', () => {
    const r = parseRecipe(yaml('dacp', 'pythia-14m', 'monitor:\n  # every: 5\ntrain:\n'), FILE).recipe;
    expect(r.monitor.every).toBe(100);
    expect(r.train.seq_len).toBe(2048);
  });

  it('unknown key far from any valid key lists the valid keys', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m', 'checkpoint:\n  zzzzzzzz: 1\n'))).toBe(`${SHOWN}:10 checkpoint.zzzzzzzz: unknown key; valid keys here: every, keep`);
  });

  it('wrong type', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  lr: abc\n'))).toBe(`${SHOWN}:10 train.lr: expected a number, found "abc"`);
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  micro_batch: 2.5\n'))).toBe(`${SHOWN}:10 train.micro_batch: expected an integer, found 2.5`);
    expect(errorOf(yaml('dacp', 'pythia-14m', 'data: [1]\n').replace(/^data:\n(  .*\n)+/m, ''))).toMatch(/:\d+ data: expected a mapping, found a list/);
  });

  it('out of range', () => {
    expect(errorOf(yaml('ets-dacp', 'pythia-14m', 'selection:\n  budget: 1.5\n'))).toBe(`${SHOWN}:10 selection.budget: expected a number <= 1, found 1.5`);
    expect(errorOf(yaml('ets-dacp', 'pythia-14m', 'selection:\n  budget: 0\n'))).toBe(`${SHOWN}:10 selection.budget: expected a positive number, found 0`);
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  lr: -1\n'))).toBe(`${SHOWN}:10 train.lr: expected a positive number, found -1`);
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  seq_len: 4096\n'))).toBe(`${SHOWN}:10 train.seq_len: expected at most the model's max_position_embeddings (2048), found 4096`);
  });

  it('min_lr above lr', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  lr: 0.001\n  min_lr: 0.01\n'))).toBe(`${SHOWN}:11 train.min_lr: expected min_lr <= lr (0.001), found 0.01`);
  });

  it('missing required keys', () => {
    expect(errorOf(yaml().replace('method: ets-dacp\n', ''))).toBe(`${SHOWN}:1 method: missing required key (expected one of dacp, tacp, ets-dacp, eta-dacp, ets-dacp-com)`);
    expect(errorOf(yaml().replace(/model:\n  init: .*\n/, ''))).toBe(`${SHOWN}:1 model: missing required key (expected a mapping)`);
    expect(errorOf('method: dacp\ndata: {}\nmodel:\n  init: pythia-14m\n')).toBe(`${SHOWN}:2 data.corpus: missing required key (expected a list)`);
    expect(errorOf('method: dacp\ndata:\n  corpus: []\nmodel:\n  init: pythia-14m\n')).toBe(`${SHOWN}:3 data.corpus: expected at least 1 item(s), found 0`);
  });

  it('eta-dacp without a metric; a metric elsewhere', () => {
    expect(errorOf(yaml('eta-dacp', 'pythia-14m'))).toBe(`${SHOWN}:1 selection.metric: method eta-dacp needs selection.metric: ${etaMetricNames().join(' or ')}`);
    expect(errorOf(yaml('ets-dacp', 'pythia-14m', 'selection:\n  metric: entropy\n'))).toMatch(/:10 selection\.metric: only used by eta-dacp/);
  });

  it('perplexity without a usable proxy model', () => {
    expect(errorOf(yaml('eta-dacp', 'pythia-14m', 'selection:\n  metric: perplexity\n'))).toMatch(
      /:9 selection\.proxy_model: perplexity needs a trained proxy model, and model.init is a fresh pythia-14m \(random weights\)/,
    );
    expect(errorOf(yaml('ets-dacp-com', 'pythia-14m', 'selection:\n  proxy_model: pythia-70m\n'))).toMatch(/:10 selection\.proxy_model: "pythia-70m" is a preset/);
  });

  it('bad enum lists the valid options', () => {
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  schedule: cosin\n'))).toBe(`${SHOWN}:10 train.schedule: expected one of cosine, constant; found "cosin" (did you mean "cosine"?)`);
    expect(errorOf(yaml('dacp', 'pythia-14m').replace('format: reuters-sgml', 'format: xml'))).toBe(
      `${SHOWN}:5 data.corpus[0].format: expected one of reuters-sgml, wikiextractor, jsonl, json, text, csv; found "xml"`,
    );
  });

  it('format-specific source keys', () => {
    const json = yaml('dacp', 'pythia-14m').replace('format: reuters-sgml', 'format: json');
    expect(errorOf(json)).toBe(`${SHOWN}:4 data.corpus[0].fields: required for format json: the field(s) holding the text, e.g. [text]`);
    expect(errorOf(yaml('dacp', 'pythia-14m').replace('include:', 'fields: [a]\n      include:'))).toBe(
      `${SHOWN}:6 data.corpus[0].fields: only for formats jsonl, json or csv (format is reuters-sgml)`,
    );
    const text = yaml('dacp', 'pythia-14m').replace('format: reuters-sgml', 'format: text\n      separator: "(["');
    expect(errorOf(text)).toMatch(/:6 data\.corpus\[0\]\.separator: expected a regular expression/);
  });

  it('model.init: hub ids, directories without config.json', () => {
    expect(errorOf(yaml('dacp', 'EleutherAI/pythia-1b'))).toMatch(/:8 model\.init: "EleutherAI\/pythia-1b" is a Hugging Face hub id and cpt does not download/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-model-'));
    expect(errorOf(yaml('dacp', dir))).toBe(`${SHOWN}:8 model.init: ${dir} has no config.json; expected a Hugging Face GPT-NeoX model directory`);
    mkdirSync(path.join(dir, 'x'));
    writeFileSync(path.join(dir, 'x', 'config.json'), '{ not json');
    expect(errorOf(yaml('dacp', path.join(dir, 'x')))).toMatch(/:8 model\.init: .*config\.json is not valid JSON/);
  });

  it('YAML syntax errors carry line and column', () => {
    const msg = errorOf(yaml('dacp', 'pythia-14m', 'train:\n  lr: [1, 2\n'));
    expect(msg).toMatch(/^recipes\/under-test\.yaml: invalid YAML:\n {2}recipes\/under-test\.yaml:1\d:\d+ /);
    expect(errorOf(yaml('dacp', 'pythia-14m', 'train:\n  lr: 1\n  lr: 2\n'))).toMatch(/under-test\.yaml:11:\d+ Map keys must be unique/);
  });

  it('collects every problem into one message, in line order', () => {
    const bad = yaml('eta-dacp', 'pythia-14m', 'train:\n  lr: abc\n  lrr: 3\n  schedule: cosin\nselection:\n  budget: 2\n').replace('format: reuters-sgml', 'format: json');
    const msg = errorOf(bad);
    expect(msg.split('\n')).toEqual([
      `${SHOWN}: 5 problems:`,
      `  ${SHOWN}:4 data.corpus[0].fields: required for format json: the field(s) holding the text, e.g. [text]`,
      `  ${SHOWN}:10 train.lr: expected a number, found "abc"`,
      `  ${SHOWN}:11 train.lrr: unknown key (did you mean "lr"?)`,
      `  ${SHOWN}:12 train.schedule: expected one of cosine, constant; found "cosin" (did you mean "cosine"?)`,
      `  ${SHOWN}:14 selection.budget: expected a number <= 1, found 2`,
    ]);
  });

  it('an unreadable or empty file', async () => {
    await expect(loadRecipe(path.join(ROOT, 'recipes', 'no-such.yaml'))).rejects.toThrow(/no-such\.yaml: cannot read recipe \(no such file\)/);
    expect(errorOf('')).toMatch(/expected a mapping of recipe keys .* found an empty file/);
  });
});

describe('hostile recipe files (fault sweep B26, B27)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-hostile-'));

  it('an alias bomb is refused as invalid YAML, in one line, quickly', async () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    let prev = 'a';
    for (const n of 'bcdefghi') {
      lines.push(`${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]`);
      prev = n;
    }
    const f = path.join(dir, 'bomb.yaml');
    writeFileSync(f, lines.join('\n') + '\n');
    const t0 = Date.now();
    const e = await loadRecipe(f).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/bomb\.yaml: invalid YAML: Excessive alias count .* \(aliases expand to too many nodes\)$/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a file far larger than a recipe is refused before it is parsed', async () => {
    const f = path.join(dir, 'big.yaml');
    writeFileSync(f, `name: ${'x'.repeat(3 << 20)}\n`);
    const t0 = Date.now();
    await expect(loadRecipe(f)).rejects.toThrow(/big\.yaml: 3\.0 MiB is not a recipe \(recipes are a few KiB; the limit is 1 MiB\)$/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
