/**
 * Model I/O and tfjs reference engine figures: fresh Pythia init rate, safetensors save/load
 * throughput (F32 and BF16) on pythia-70m, and tfjs trainStep / logits throughput on pythia-14m.
 * Usage: npm run bench:model [-- --steps N --seq N --batch N]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, saveModel } from '../src/model/load.js';
import { paramCount } from '../src/model/config.js';
import { createTfjsEngine } from '../src/engine/tfjs/index.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '2' }, seq: { type: 'string', default: '128' }, batch: { type: 'string', default: '2' } } });
const steps = Number(values.steps), seq = Number(values.seq), batch = Number(values.batch);
const figures: [string, number][] = [];
const time = async <T>(f: () => Promise<T> | T): Promise<[T, number]> => {
  const t = performance.now();
  const r = await f();
  return [r, (performance.now() - t) / 1000];
};

const dir = mkdtempSync(path.join(tmpdir(), 'cpt-bench-model-'));
try {
  const [m, tInit] = await time(() => loadModel('pythia-70m', { seed: 0 }));
  const n = paramCount(m.config);
  figures.push(['init_params_per_s', Math.round(n / tInit)]);
  for (const dtype of ['float32', 'bfloat16'] as const) {
    const d = path.join(dir, dtype);
    const [, tSave] = await time(() => saveModel(d, m.config, m.weights, { dtype }));
    const bytes = statSync(path.join(d, 'model.safetensors')).size;
    const [, tLoad] = await time(() => loadModel(d));
    const tag = dtype === 'float32' ? 'f32' : 'bf16';
    figures.push([`save_${tag}_MBps`, Math.round(bytes / 1e6 / tSave)], [`load_${tag}_MBps`, Math.round(bytes / 1e6 / tLoad)]);
    console.log(`pythia-70m ${dtype}: ${(bytes / 1e6).toFixed(0)} MB, save ${tSave.toFixed(2)}s, load ${tLoad.toFixed(2)}s`);
  }
  m.weights.clear();

  const small = await loadModel('pythia-14m', { seed: 0 });
  const e = await createTfjsEngine(small.config, {});
  e.loadWeights(small.weights);
  const ids = Int32Array.from({ length: batch * seq }, (_, i) => (i * 7919) % small.config.vocab_size);
  e.trainStep(ids, batch, seq); // warm-up
  const [, tTrain] = await time(() => {
    for (let s = 0; s < steps; s++) e.trainStep(ids, batch, seq);
  });
  const [, tAdam] = await time(() => e.applyAdamW({ lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1 }));
  const [, tFwd] = await time(() => {
    for (let s = 0; s < steps; s++) e.evalLoss(ids, batch, seq);
  });
  e.dispose();
  console.log(`tfjs ${e.name} pythia-14m batch ${batch} x seq ${seq}: trainStep ${(tTrain / steps).toFixed(2)}s, evalLoss ${(tFwd / steps).toFixed(2)}s, AdamW ${tAdam.toFixed(2)}s`);
  figures.push(['tfjs_14m_train_tokens_per_s', Math.round((steps * batch * seq) / tTrain)], ['tfjs_14m_eval_tokens_per_s', Math.round((steps * batch * seq) / tFwd)], ['tfjs_14m_adamw_s', Number(tAdam.toFixed(3))]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const [k, v] of figures) console.log(`${k}=${v}`);
