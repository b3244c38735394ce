/**
 * Validated YAML → resolved `Recipe`: the defaults one key settles for another (Pythia's learning
 * rate for the model, the budget for the method, …), paths absolute, rules across sections checked. Errors and notes are collected, never thrown, so the user sees them all.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { PYTHIA_LR } from '../model/presets.js';
import { ENGINES } from '../engine/registry.js';
import { ROOT } from '../util/paths.js';
import { KIT_TOKENIZER } from '../data/recipe.js';
import { EFFICIENT_BUDGET, etaMetricNames, findMetric } from '../select/recipe.js';
import { MIN_LR_RATIO } from '../train/recipe.js';
import { FULL_DATA_METHODS, methodMetrics, TASK_METHODS } from './names.js';
import { modelInfo, type ModelInfo } from './model-info.js';
import type { KeyPath, Problem } from './problems.js';
import { keysAt, type RawRecipe, type RawSource } from './schema.js';
import type { Recipe, SourceSpec } from './types.js';

export interface Resolution {
  recipe: Recipe;
  model: ModelInfo;
  errors: Problem[];
  /** Things worth knowing that do not stop a load (rounding, missing model directory, unused keys). */
  notes: Problem[];
}

/** Relative paths are relative to the project root; `~/` is the home directory. */
export function resolvePath(p: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(ROOT, p);
}

/**
 * `kitDir` is the data kit directory (`${CPT_DATA}`), used by defaults that live in the kit. The
 * schema has filled every constant default; what is left is what one key settles for another.
 */
export function resolveRaw(raw: RawRecipe, file: string, kitDir: string): Resolution {
  const errors: Problem[] = [];
  const notes: Problem[] = [];
  const err = (p: KeyPath, message: string) => errors.push({ path: p, message });
  const note = (p: KeyPath, message: string) => notes.push({ path: p, message });

  const name = raw.name ?? path.basename(file).replace(/\.ya?ml$/i, '');
  if (raw.name === undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    err(['name'], `the file name "${name}" cannot name a run; set name: to letters, digits, ".", "_" or "-"`);
  }
  const method = raw.method;

  // --- model
  const model = modelInfo(raw.model.init, resolvePath);
  if (raw.model.init.startsWith('EleutherAI/')) {
    err(['model', 'init'], `"${raw.model.init}" is a Hugging Face hub id and cpt does not download; put the model in a directory (e.g. checkpoints/models/${path.basename(raw.model.init)}) and give its path, or write "${path.basename(raw.model.init)}" for a fresh init of that shape`);
  } else if (model.problem) {
    err(['model', 'init'], model.problem);
  } // a directory not there yet is fine until training: see inputs.ts

  // --- data
  const sources = (list: RawSource[], key: 'corpus' | 'pile_test'): SourceSpec[] => {
    // In the schema's key order: corpusSlug hashes these objects, naming the prepared directories.
    const out = inSchemaOrder(list.map(resolveSource), ['data', key]);
    const seen = new Map<string, number>();
    out.forEach((s, i) => {
      if (seen.has(s.name)) err(['data', key, i, 'name'], `source name "${s.name}" is also used by data.${key}[${seen.get(s.name)}]; give each source its own name:`);
      else seen.set(s.name, i);
    });
    return out;
  };
  const corpus = sources(raw.data.corpus, 'corpus');
  const pileTest = sources(raw.data.pile_test, 'pile_test');
  if (pileTest.length === 0) note(['data'], 'no data.pile_test: the general-domain (Pile-test) loss will not be monitored');
  const tasks = [...new Set(raw.data.tasks)];
  if (TASK_METHODS.has(method) && tasks.length === 0) err(['data', 'tasks'], `method ${method} needs at least one task (its unlabeled text defines the target)`);
  const tokenizer = resolvePath(raw.data.tokenizer ?? path.join(kitDir, KIT_TOKENIZER));

  // --- selection: what the method needs
  const sel = raw.selection;
  const eta = etaMetricNames();
  if (method === 'eta-dacp' && !sel.metric) err(['selection', 'metric'], `method eta-dacp needs selection.metric: ${eta.join(' or ')}`);
  if (method === 'eta-dacp' && sel.metric && !eta.includes(sel.metric)) err(['selection', 'metric'], `expected ${eta.join(' or ')}, got "${sel.metric}"`);
  if (method !== 'eta-dacp' && sel.metric) err(['selection', 'metric'], `only used by eta-dacp (${method === 'ets-dacp-com' ? 'ets-dacp-com combines similarity, perplexity and entropy itself' : `method is ${method}`}); remove it`);
  const budget = sel.budget ?? (FULL_DATA_METHODS.has(method) ? 1 : EFFICIENT_BUDGET);
  if (method === 'tacp' && sel.budget !== undefined && sel.budget < 1) note(['selection', 'budget'], 'tacp trains on the task text, which is not subsampled; budget is ignored');
  let proxy: string | undefined;
  const usesProxy = (method !== 'eta-dacp' || eta.includes(sel.metric ?? '')) && methodMetrics(method, sel.metric).some((m) => findMetric(m)?.usesProxy);
  if (usesProxy) {
    if (sel.proxy_model) proxy = modelOrPreset(sel.proxy_model, ['selection', 'proxy_model'], err);
    else if (model.kind === 'dir') proxy = model.init; // the base model scores its own domain data
    else err(['selection', 'proxy_model'], `perplexity needs a trained proxy model, and model.init is a fresh ${model.init} (random weights); set selection.proxy_model to a model directory`);
  } else if (sel.proxy_model) {
    note(['selection', 'proxy_model'], `unused: ${method}${sel.metric ? ` with ${sel.metric}` : ''} does not score perplexity`);
  }
  const emb = sel.embedder;
  if (emb.kind !== 'hashed' && !emb.model) err(['selection', 'embedder', 'model'], `embedder kind ${emb.kind} needs model: a directory`);
  const embModel = emb.model ? (emb.kind === 'model' ? modelOrPreset(emb.model, ['selection', 'embedder', 'model'], err) : resolvePath(emb.model)) : undefined;

  // --- train: what the model's size and shape settle
  const t = raw.train;
  let lr = t.lr;
  if (lr === undefined) {
    if (model.sizeKey) lr = PYTHIA_LR[model.sizeKey];
    else if (!model.problem) err(['train', 'lr'], `missing: cannot tell the Pythia size of ${model.init} (no config.json matching a Pythia shape); set train.lr`);
  }
  lr ??= 0;
  const minLr = t.min_lr ?? Number((MIN_LR_RATIO * lr).toPrecision(12)); // 0.1·3e-4, not 2.9999…e-5
  if (lr > 0 && minLr > lr) err(['train', 'min_lr'], `expected min_lr <= lr (${lr}), found ${minLr}`);
  const maxPos = model.config?.max_position_embeddings;
  if (maxPos && t.seq_len > maxPos) err(['train', 'seq_len'], `expected at most the model's max_position_embeddings (${maxPos}), found ${t.seq_len}`);
  const unit = t.seq_len * t.micro_batch;
  const asked = t.batch_tokens;
  let batchTokens = asked;
  if (asked < unit) {
    batchTokens = unit;
    note(['train', 'batch_tokens'], `${asked} is less than one micro-batch (micro_batch ${t.micro_batch} × seq_len ${t.seq_len} = ${unit} tokens); each step uses ${unit} tokens, ${(unit / asked).toFixed(1)}× the batch asked for (lower micro_batch to keep it)`);
  } else if (asked % unit !== 0) {
    batchTokens = Math.round(asked / unit) * unit;
    note(['train', 'batch_tokens'], `${asked} is not a multiple of seq_len × micro_batch (${t.seq_len} × ${t.micro_batch}); using ${batchTokens} (${batchTokens / unit} micro-batches per step)`);
  }

  const runDir = resolvePath(raw.run_dir ?? path.join('checkpoints', name));
  const preparedDir = resolvePath(raw.data.prepared_dir ?? path.join('checkpoints', 'data', corpusSlug(corpus, pileTest, tokenizer)));

  const { proxy_model: _p, embedder: _e, ...selRest } = sel;
  const recipe: Recipe = inSchemaOrder({
    file,
    name,
    method,
    run_dir: runDir,
    data: { ...raw.data, corpus, pile_test: pileTest, tasks, prepared_dir: preparedDir, tokenizer },
    selection: { ...selRest, budget, embedder: { ...emb, ...(embModel ? { model: embModel } : {}) }, ...(proxy ? { proxy_model: proxy } : {}) },
    model: { init: model.init, ...(raw.model.base_recipe !== undefined ? { base_recipe: resolvePath(raw.model.base_recipe) } : {}) },
    train: { ...t, lr, min_lr: minLr, batch_tokens: batchTokens },
    monitor: raw.monitor,
    checkpoint: raw.checkpoint,
    engine: { ...raw.engine, precision: raw.engine.precision ?? ENGINES[raw.engine.kind].defaultPrecision },
  });
  return { recipe, model, errors, notes };
}

/** `v` with every mapping's keys in the schema's order (keys the schema lacks, like `file`, first), so a resolved recipe prints as the schema reads. */
function inSchemaOrder<T>(v: T, at: (string | number)[] = []): T {
  if (Array.isArray(v)) return v.map((x, i) => inSchemaOrder(x, [...at, i])) as T;
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const known = keysAt(at);
  const keys = [...Object.keys(o).filter((k) => !known.includes(k)), ...known.filter((k) => k in o)];
  return Object.fromEntries(keys.map((k) => [k, inSchemaOrder(o[k], [...at, k])])) as T;
}

/** Format rules are checked by the schema (data/recipe.ts); here the defaults that depend on the path and format. */
function resolveSource(s: RawSource): SourceSpec {
  const p = resolvePath(s.path);
  return { ...s, name: s.name ?? path.basename(p), path: p, encoding: s.encoding ?? (s.format === 'reuters-sgml' ? 'latin1' : 'utf-8') };
}

/** A model given by path (or a preset, which cannot score anything and is refused). */
function modelOrPreset(v: string, at: KeyPath, err: (p: KeyPath, m: string) => void): string {
  const m = modelInfo(v, resolvePath);
  if (m.kind === 'preset') err(at, `"${v}" is a preset (random weights when fresh); expected a trained model directory`);
  else if (m.problem) err(at, m.problem);
  return m.init;
}

/**
 * Several recipes share one prepared corpus: the directory is named by the corpus source names and a
 * hash of everything that changes the prepared content (sources, Pile-test sources, tokenizer).
 */
export function corpusSlug(corpus: SourceSpec[], pileTest: SourceSpec[], tokenizer: string): string {
  const names = corpus.map((s) => s.name.replace(/[^A-Za-z0-9._-]+/g, '_')).join('+').slice(0, 80);
  const h = createHash('sha256').update(JSON.stringify({ corpus, pileTest, tokenizer })).digest('hex').slice(0, 8);
  return `${names}-${h}`;
}
