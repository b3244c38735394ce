/**
 * npm run bench:cpt [-- --shapes 14m,70m --steps 14m=40,70m=12 --no-litgpt --match]
 *
 * The whole continued-pre-training job, cpt against LitGPT (PyPI `litgpt`, in .peers-litgpt/),
 * from the same initial weights (a seeded Pythia-shaped init saved as an HF directory; LitGPT
 * converts it with its own converter), on the same tokens in the same order (cpt's packed rows of
 * the repro DACP corpus), with the same batch (32 rows of 256 tokens, micro-batch 16), AdamW
 * settings, warmup, cosine schedule and clipping:
 *   - cpt: `cpt train` end to end (corpus preparation and tokenization are cached by a first,
 *     untimed pass; the timed run packs, trains, monitors and writes its final model);
 *   - LitGPT: `litgpt.pretrain.setup` (Fabric, torch.compile, fp32) over those rows
 *     (scripts/anchors/litgpt_cpt.py).
 * Prints tokens/s (training steps), wall time and peak RSS of both jobs, and the Fin-test loss of
 * both initial and final models (cpt: its monitor; LitGPT: its own model and cross-entropy on the
 * same rows), with name=value lines at the end; writes checkpoints/bench/cpt.json.
 * --match adds a second LitGPT run with cpt's two training conventions where LitGPT's differ
 * (learning rate per optimizer step, no decay on norms and biases): its final loss shows how much
 * of the loss difference those conventions explain.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { presetConfig } from '../src/model/presets.js';
import { initWeights } from '../src/model/init.js';
import { saveModel } from '../src/model/load.js';
import { readMetrics } from '../src/monitor/metrics.js';
import { loadRecipe } from '../src/recipe/load.js';
import { warmupSteps } from '../src/train/schedule.js';
import { ROOT } from '../src/util/paths.js';
import { writeFileAtomicSync } from '../src/util/atomic.js';

const { values: a } = parseArgs({
  options: {
    shapes: { type: 'string', default: '14m,70m' },
    steps: { type: 'string', default: '14m=40,70m=12' },
    'no-litgpt': { type: 'boolean', default: false },
    match: { type: 'boolean', default: false },
  },
});
const steps = new Map(a.steps!.split(',').map((s) => s.split('=') as [string, string]).map(([k, v]) => [k, Number(v)]));
const OUT = path.join(ROOT, 'checkpoints', 'bench', 'cpt');
const PY = process.env.CPT_LITGPT_PYTHON || path.join(ROOT, '.peers-litgpt', 'bin', 'python');
const ANCHOR = path.join(ROOT, 'scripts', 'anchors', 'litgpt_cpt.py');
const SOURCE = path.join(ROOT, 'recipes', 'repro', 'dacp.yaml');
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
const threads = os.availableParallelism();
console.log(`bench:cpt  ${cpu}, ${threads} cores, load1=${os.loadavg()[0]!.toFixed(2)}`);

/** `/usr/bin/time -v` around a command: its wall seconds and peak RSS. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string; wall: number; rssMb: number } {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', cwd: ROOT, env, maxBuffer: 1 << 28 });
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  return {
    status: r.status, stdout: r.stdout, stderr: r.stderr,
    wall: wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN,
    rssMb: rss ? Number(rss[1]) / 1024 : NaN,
  };
}

function litgptMissing(): string | undefined {
  if (a['no-litgpt']) return 'skipped (--no-litgpt)';
  const p = spawnSync(PY, ['-c', 'import litgpt, torch'], { encoding: 'utf8' });
  if (p.status !== 0) return `LitGPT not installed for ${PY} (python3 -m venv .peers-litgpt && .peers-litgpt/bin/pip install -r test/peers/requirements-litgpt.txt)`;
  return undefined;
}
const missing = litgptMissing();

const figures: Record<string, number | string> = { cpu };
for (const shape of a.shapes!.split(',')) {
  const nSteps = steps.get(shape);
  if (!nSteps) throw new Error(`--steps: no step count for ${shape}`);
  const dir = path.join(OUT, shape);
  fs.rmSync(dir, { recursive: true, force: true });
  const init = path.join(dir, 'init');
  const config = presetConfig(`pythia-${shape}`);
  await saveModel(init, config, initWeights(config, 1234));

  // The repro DACP recipe, cut to nSteps steps from the saved init, Fin-test monitored at start and end.
  const doc = parseDocument(fs.readFileSync(SOURCE, 'utf8'));
  doc.setIn(['name'], `bench-cpt-${shape}`);
  doc.setIn(['run_dir'], path.join(dir, 'cpt'));
  doc.setIn(['model'], { init });
  doc.setIn(['train', 'max_steps'], nSteps);
  doc.setIn(['monitor'], { every: nSteps, fin_test_tokens: 65536, pile_test_tokens: 0 });
  doc.setIn(['checkpoint'], { every: nSteps, keep: 1 });
  const file = path.join(dir, 'recipe.yaml');
  fs.writeFileSync(file, doc.toString({ lineWidth: 0 }));
  const recipe = await loadRecipe(file);
  const t = recipe.train;

  // Untimed first pass: prepare + tokenize the corpus (cached for both), then the timed job.
  const cli = path.join(ROOT, 'scripts', 'cpt.mjs');
  const warm = spawnSync(process.execPath, [cli, 'train', file, '--max-steps', '1'], { encoding: 'utf8', cwd: ROOT });
  if (warm.status !== 0) throw new Error(`cpt train (warm-up pass) failed:\n${warm.stderr}`);
  fs.rmSync(recipe.run_dir, { recursive: true, force: true });
  const c = timed(process.execPath, [cli, 'train', file]);
  if (c.status !== 0) throw new Error(`cpt train failed:\n${c.stderr}`);
  const m = readMetrics(path.join(recipe.run_dir, 'metrics.jsonl'));
  const stepRates = m.filter((r) => r.step > 1 && r.tok_s !== null).map((r) => r.tok_s!);
  const cptTokS = stepRates.length ? stepRates.length / stepRates.reduce((s, x) => s + 1 / x, 0) : NaN; // harmonic mean: tokens over time
  const fin0 = m.find((r) => r.step === 0)?.fin_test ?? NaN;
  const fin = [...m].reverse().find((r) => r.fin_test !== null)?.fin_test ?? NaN;
  const tokens = m[m.length - 1]!.tokens;
  console.log(`pythia-${shape} cpt: ${tokens} tokens, ${cptTokS.toFixed(0)} tok/s in steps, wall ${c.wall.toFixed(1)} s, peak RSS ${c.rssMb.toFixed(0)} MB, Fin-test ${fin0.toFixed(4)} → ${fin.toFixed(4)}`);
  Object.assign(figures, {
    [`cpt_tok_s_${shape}`]: Math.round(cptTokS), [`cpt_wall_s_${shape}`]: +c.wall.toFixed(1), [`cpt_rss_mb_${shape}`]: Math.round(c.rssMb),
    [`cpt_fin_test_initial_${shape}`]: +fin0.toFixed(4), [`cpt_fin_test_${shape}`]: +fin.toFixed(4),
  });

  if (missing) {
    console.log(`pythia-${shape} litgpt: ${missing}`);
    continue;
  }
  const packed = (name: string) => JSON.parse(fs.readFileSync(path.join(recipe.run_dir, 'data', `${name}.packed.json`), 'utf8')) as { tokensFile: string; dtype: string };
  const train = packed('train'), finTest = packed('fin-test');
  const litgpt = (match: boolean) => {
    const l = timed(PY, [ANCHOR,
      '--init', init, '--model', `pythia-${shape}`, '--out', path.join(dir, match ? 'litgpt-matched' : 'litgpt'),
      '--train-bin', path.join(recipe.run_dir, 'data', train.tokensFile), '--val-bin', path.join(recipe.run_dir, 'data', finTest.tokensFile),
      '--dtype', train.dtype, '--seq', String(t.seq_len), '--val-rows', String(Math.ceil(recipe.monitor.fin_test_tokens / t.seq_len)),
      '--steps', String(nSteps), '--micro', String(t.micro_batch), '--accum', String(Math.round(t.batch_tokens / (t.micro_batch * t.seq_len))),
      '--warmup-steps', String(warmupSteps(t.warmup, nSteps)), '--threads', String(threads),
      '--lr', String(t.lr), '--min-lr', String(t.min_lr), '--wd', String(t.weight_decay), '--beta1', String(t.beta1), '--beta2', String(t.beta2),
      '--eps', String(t.eps), '--clip', String(t.clip), ...(match ? ['--match-cpt'] : [])]);
    if (l.status !== 0) throw new Error(`LitGPT run failed:\n${l.stderr.slice(-4000)}`);
    return { l, r: JSON.parse(l.stdout.trim().split('\n').pop()!) as { val_initial: number; val_final: number; tok_s: number; tokens: number; torch: string } };
  };
  const { l, r } = litgpt(false);
  console.log(`pythia-${shape} litgpt (torch ${r.torch}): ${r.tokens} tokens, ${r.tok_s.toFixed(0)} tok/s in steps, wall ${l.wall.toFixed(1)} s, peak RSS ${l.rssMb.toFixed(0)} MB, Fin-test ${r.val_initial.toFixed(4)} → ${r.val_final.toFixed(4)}`);
  if (a.match) {
    const mr = litgpt(true).r;
    console.log(`pythia-${shape} litgpt with cpt's schedule and decay groups: Fin-test ${mr.val_initial.toFixed(4)} → ${mr.val_final.toFixed(4)} (cpt ${fin.toFixed(4)})`);
    Object.assign(figures, { [`litgpt_matched_fin_test_${shape}`]: +mr.val_final.toFixed(4), [`fin_test_diff_matched_${shape}`]: +(fin - mr.val_final).toFixed(4) });
  }
  Object.assign(figures, {
    [`litgpt_tok_s_${shape}`]: Math.round(r.tok_s), [`litgpt_wall_s_${shape}`]: +l.wall.toFixed(1), [`litgpt_rss_mb_${shape}`]: Math.round(l.rssMb),
    [`litgpt_fin_test_initial_${shape}`]: +r.val_initial.toFixed(4), [`litgpt_fin_test_${shape}`]: +r.val_final.toFixed(4),
    [`ratio_tok_s_${shape}`]: +(cptTokS / r.tok_s).toFixed(2), [`ratio_wall_${shape}`]: +(l.wall / c.wall).toFixed(2),
    [`fin_test_diff_${shape}`]: +(fin - r.val_final).toFixed(4),
  });
}
fs.mkdirSync(path.dirname(OUT), { recursive: true });
writeFileAtomicSync(path.join(ROOT, 'checkpoints', 'bench', 'cpt.json'), JSON.stringify(figures, null, 2) + '\n');
for (const [k, v] of Object.entries(figures)) if (k !== 'cpu') console.log(`${k}=${v}`);
