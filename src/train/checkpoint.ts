import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine, OptimizerState, WeightMap } from '../engine/engine.js';
import { paramSpecs, type NeoXConfig } from '../model/config.js';
import { hfConfigObject, readHFConfig } from '../model/hf-config.js';
import { readWeights } from '../model/load.js';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.js';
import { UserError } from '../util/errors.js';
import { RESOLVED_RECIPE, writeCheckpoint, type CheckpointFile } from './checkpoint-store.js';
import type { Progress } from './loop.js';

/** `state.json` of a checkpoint: where the run stands and what it must match to resume. */
export interface TrainState extends Progress {
  format: 'cpt-train-state/1';
  total_steps: number;
  /** Data order RNG: epoch 0 is file order; later epochs are permutations seeded by (seed, epoch). */
  rng: { algorithm: string; seed: number; epoch: number };
  /** sha256 of `resume_keys` (canonical JSON). */
  recipe_hash: string;
  /** The recipe values a resume must not change (key path → value). */
  resume_keys: Record<string, unknown>;
  engine: string;
  threads: number;
}

export interface CheckpointContent {
  config: NeoXConfig;
  state: TrainState;
  recipeYaml: string;
  metricsText: string;
  tokenizer?: string;
}

/**
 * One checkpoint: HF model (config.json + model.safetensors, loadable by transformers), AdamW
 * moments, progress, the resolved recipe and the metrics so far. Weights and moments are float32
 * as the engine holds them, so a resume starts from bit-identical state.
 */
export function saveTrainCheckpoint(runDir: string, engine: Engine, c: CheckpointContent, keep: number): string {
  const weights = engine.exportWeights();
  const opt = engine.exportOptimizer();
  const specs = paramSpecs(c.config);
  const files: Record<string, CheckpointFile> = {
    'config.json': JSON.stringify(hfConfigObject(c.config), null, 2) + '\n',
    'model.safetensors': (f) => writeSafetensors(f, tensorsOf(specs, weights, '')),
    'optimizer.safetensors': (f) => writeSafetensors(f, new Map([...tensorsOf(specs, opt.m, 'm.'), ...tensorsOf(specs, opt.v, 'v.')]), { step: String(opt.step) }),
    'state.json': JSON.stringify(c.state, null, 2) + '\n',
    [RESOLVED_RECIPE]: c.recipeYaml,
    'metrics.jsonl': c.metricsText,
  };
  if (c.tokenizer) files['tokenizer.json'] = readFileSync(c.tokenizer);
  // fp32 weights plus two fp32 moments per parameter, and the small files.
  const params = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return writeCheckpoint(runDir, c.state.step, files, keep, 12 * params + 2 ** 20);
}

export interface LoadedCheckpoint {
  config: NeoXConfig;
  weights: WeightMap;
  optimizer: OptimizerState;
  state: TrainState;
  metricsText: string;
}

/** Read a checkpoint written by `saveTrainCheckpoint` (verify it first with verifyCheckpoint). */
export function loadTrainCheckpoint(dir: string): LoadedCheckpoint {
  const config = readHFConfig(dir);
  const weights = readWeights(dir, config);
  const stateFile = path.join(dir, 'state.json');
  let state: TrainState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as TrainState;
  } catch (e) {
    throw new UserError(`${stateFile}: not valid JSON (${(e as Error).message})`);
  }
  if (state.format !== 'cpt-train-state/1') throw new UserError(`${stateFile}: format "${String(state.format)}", expected cpt-train-state/1`);
  const r = openSafetensors(path.join(dir, 'optimizer.safetensors'));
  const m: WeightMap = new Map(), v: WeightMap = new Map();
  try {
    for (const s of paramSpecs(config)) {
      if (!r.tensors.has('m.' + s.name) || !r.tensors.has('v.' + s.name)) {
        throw new UserError(`${dir}/optimizer.safetensors: no moments for "${s.name}"`);
      }
      m.set(s.name, r.read('m.' + s.name));
      v.set(s.name, r.read('v.' + s.name));
    }
    const step = Number(r.metadata.step);
    if (!Number.isInteger(step) || step < 0) throw new UserError(`${dir}/optimizer.safetensors: metadata "step" should be a whole number`);
    const metricsFile = path.join(dir, 'metrics.jsonl');
    const metricsText = existsSync(metricsFile) ? readFileSync(metricsFile, 'utf8') : '';
    return { config, weights, optimizer: { step, m, v }, state, metricsText };
  } finally {
    r.close();
  }
}

function tensorsOf(specs: ReturnType<typeof paramSpecs>, w: WeightMap, prefix: string): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  for (const s of specs) {
    const data = w.get(s.name);
    if (!data) throw new Error(`checkpoint: engine state lacks "${s.name}"`);
    out.set(prefix + s.name, { dtype: 'F32', shape: s.shape, data });
  }
  return out;
}
