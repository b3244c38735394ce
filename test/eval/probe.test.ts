// The linear probe: a sanity case each way (features that encode the label → near 100%; noise →
// the majority rate), determinism, and an end-to-end probe through a real engine and `cpt eval`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fitSoftmax, predictSoftmax, probeTask } from '../../src/eval/probe.js';
import { loadTaskConfig } from '../../src/eval/config.js';
import { createEngine, defaultEngineKind } from '../../src/engine/index.js';
import { initWeights } from '../../src/model/init.js';
import { saveModel } from '../../src/model/load.js';
import { presetConfig } from '../../src/model/presets.js';
import { loadTokenizer } from '../../src/data/index.js';
import { mulberry32 } from '../../src/util/rng.js';
import { dataDir, ROOT } from '../../src/util/paths.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cpt-probe-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function data(n: number, d: number, informative: boolean, seed: number): { x: Float32Array[]; y: number[] } {
  const r = mulberry32(seed);
  const y = Array.from({ length: n }, () => (r() < 0.6 ? 0 : r() < 0.5 ? 1 : 2)); // 60% majority
  const x = y.map((c) => Float32Array.from({ length: d }, (_, j) => (r() - 0.5) * 2 + (informative && j === c ? 3 : 0)));
  return { x, y };
}
const accuracy = (m: ReturnType<typeof fitSoftmax>, s: ReturnType<typeof data>) => s.x.filter((x, i) => predictSoftmax(m, x) === s.y[i]).length / s.x.length;

describe('linear probe', () => {
  it('features that encode the label: near 100% on held-out data', () => {
    const m = fitSoftmax(data(600, 16, true, 1).x, data(600, 16, true, 1).y, 3);
    expect(accuracy(m, data(400, 16, true, 2))).toBeGreaterThan(0.97);
  });

  it('noise: stays at the majority rate, not above it', () => {
    const tr = data(600, 16, false, 3), te = data(2000, 16, false, 4);
    const acc = accuracy(fitSoftmax(tr.x, tr.y, 3), te);
    const majority = te.y.filter((y) => y === 0).length / te.y.length;
    expect(Math.abs(acc - majority)).toBeLessThan(0.04);
  });

  it('is deterministic: the same data give bitwise the same weights', () => {
    const s = data(300, 8, true, 5);
    const a = fitSoftmax(s.x, s.y, 3), b = fitSoftmax(s.x, s.y, 3);
    a.w.forEach((row, c) => expect(Buffer.from(row.buffer).equals(Buffer.from(b.w[c]!.buffer))).toBe(true));
  });

  it('end to end on a real engine: FPB probe from mean-pooled hidden states, reproducible, reported by cpt eval --probe', { timeout: 180_000 }, async () => {
    const c = { ...presetConfig('pythia-14m'), num_hidden_layers: 2, max_position_embeddings: 256 };
    const model = path.join(tmp, 'model');
    await saveModel(model, c, initWeights(c, 2), { tokenizer: path.join(dataDir(), 'tokenizer/20B_tokenizer.json') });
    const tok = await loadTokenizer(path.join(model, 'tokenizer.json'));
    const e = await createEngine(await defaultEngineKind(), c, { threads: 2 });
    e.loadWeights(initWeights(c, 2));
    const cfg = await loadTaskConfig('fpb');
    const o = { dataDir: dataDir(), seed: 1, batch: 16, limit: 120, maxTrain: 300, maxTokens: 48 };
    const a = await probeTask(cfg, e, tok, o), b = await probeTask(cfg, e, tok, o);
    e.dispose();
    await tok.close();
    expect(b).toEqual(a);
    expect([a.n_train, a.n_test]).toEqual([300, 120]);
    expect(a.acc).toBeGreaterThanOrEqual(0);
    expect(a.f1_stderr).toBeGreaterThan(0);
    const out = path.join(tmp, 'res.json');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'eval', '--model', model, '--tasks', 'fpb', '--limit', '20', '--shots', '0', '--probe', '--probe-limit', '30', '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const metrics = (JSON.parse(readFileSync(out, 'utf8')) as { results: { metric: string }[] }).results.map((x) => x.metric);
    expect(metrics).toEqual(expect.arrayContaining(['acc', 'gold_logprob', 'margin', 'task_test_loss', 'probe_acc', 'probe_f1_weighted']));
    expect(r.stderr).toMatch(/fpb probe \(train 2000, test 30\): acc=/); // --probe-limit, not --limit
  });
});

describe('task-test loss', () => {
  it('equals cpt score on the same text, and cpt eval reports it', { timeout: 180_000 }, async () => {
    const { textLoss } = await import('../../src/eval/text-loss.js');
    const { taskTexts } = await import('../../src/data/tasks/index.js');
    const { runScore } = await import('../../src/cli/score.js');
    const { writeFileSync } = await import('node:fs');
    const c = { ...presetConfig('pythia-14m'), num_hidden_layers: 2, max_position_embeddings: 256 };
    const model = path.join(tmp, 'model-tl');
    await saveModel(model, c, initWeights(c, 4), { tokenizer: path.join(dataDir(), 'tokenizer/20B_tokenizer.json') });
    const cfg = await loadTaskConfig('fiqa_sa');
    const texts = (await taskTexts('fiqa_sa', 'test', dataDir())).slice(0, 40);
    const tok = await loadTokenizer(path.join(model, 'tokenizer.json'));
    const kind = await defaultEngineKind();
    const e = await createEngine(kind, c, { threads: 1 });
    e.loadWeights(initWeights(c, 4));
    const ours = textLoss(e, tok, texts, { batch: 8, maxTokens: 256 });
    e.dispose();
    await tok.close();
    const file = path.join(tmp, 'fiqa.jsonl');
    writeFileSync(file, texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
    const score = await runScore({ model, text: file, engine: kind, batch: 8, threads: 1, out: path.join(tmp, 'fiqa-scores.jsonl') });
    expect(ours.loss).toBeCloseTo(score.meanLoss!, 10);
    expect(ours.loss).toBeGreaterThan(0);
  });
});
