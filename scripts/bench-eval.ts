/**
 * Full FPB evaluation (test split, 0 and 5 shots) of one model: prints the figures and the
 * throughput; ends with one name=value line per figure. Values are reported, never asserted.
 * The 5-shot run is repeated with each choice scored as its own row (--no-share's way, what
 * eval did before the shared context), in the same process: the speed-up of scoring a shared
 * few-shot context once, and a check that the scores are the same.
 *
 *   npm run bench:eval -- [MODEL_DIR_OR_PRESET] [--engine auto|native|cuda|tfjs] [--batch N] [--limit N]
 *
 * MODEL defaults to the newest checkpoints/* /final.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, dataDir } from '../src/util/paths.js';
import { UserError } from '../src/util/errors.js';
import { createEngine, defaultEngineKind, parseEngineKind, type Engine } from '../src/engine/index.js';
import { loadModel } from '../src/model/load.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { loadTaskConfig } from '../src/eval/config.js';
import { runTask } from '../src/eval/run.js';

function newestFinal(): string {
  const dir = path.join(ROOT, 'checkpoints');
  const finals = existsSync(dir)
    ? readdirSync(dir)
        .map((d) => path.join(dir, d, 'final'))
        .filter((p) => existsSync(path.join(p, 'config.json')))
    : [];
  if (!finals.length) throw new UserError(`no checkpoints/*/final under ${ROOT}; pass a model directory or preset (e.g. pythia-14m)`);
  return finals.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { engine: { type: 'string', default: 'auto' }, batch: { type: 'string', default: '8' }, limit: { type: 'string' }, seed: { type: 'string', default: '1234' } },
  });
  const modelArg = positionals[0] ?? newestFinal();
  const model = await loadModel(modelArg);
  const own = path.join(modelArg, 'tokenizer.json');
  const tok = await loadTokenizer(existsSync(own) ? own : path.join(dataDir(), 'tokenizer', '20B_tokenizer.json'), { threads: 0 });
  const kind = !values.engine || values.engine === 'auto' ? await defaultEngineKind() : parseEngineKind(values.engine);
  const engine: Engine = await createEngine(kind, model.config);
  engine.loadWeights(model.weights);
  const cfg = await loadTaskConfig('fpb');
  const limit = values.limit ? Number(values.limit) : undefined;
  console.log(`model ${model.source}; engine ${engine.name}; batch ${values.batch}${limit ? `; limit ${limit}` : ''}`);
  const figures: Array<[string, number]> = [];
  for (const shots of [0, 5]) {
    const r = await runTask(cfg, engine, tok, { dataDir: dataDir(), shots, limit, seed: Number(values.seed), batch: Number(values.batch), progress: true });
    for (const m of r.metrics) {
      console.log(`fpb ${shots}-shot n=${r.n} ${m.metric} = ${m.value.toFixed(4)}${m.stderr !== null ? ` ± ${m.stderr.toFixed(4)}` : ''}`);
      figures.push([`fpb_${shots}shot_${m.metric}`, m.value]);
    }
    console.log(`fpb ${shots}-shot: ${r.n} examples, ${r.requests} requests in ${r.seconds.toFixed(1)} s = ${r.examples_per_s.toFixed(2)} examples/s`);
    figures.push([`fpb_${shots}shot_examples_per_s`, r.examples_per_s], [`fpb_${shots}shot_n`, r.n]);
    if (shots === 5) {
      const u = await runTask(cfg, engine, tok, { dataDir: dataDir(), shots, limit, seed: Number(values.seed), batch: Number(values.batch), progress: true, shareContext: false });
      // The same log-likelihoods up to float rounding (rows of other lengths are summed in another order).
      const diff = Math.max(...u.metrics.map((m, i) => Math.abs(m.value - r.metrics[i]!.value)));
      console.log(`fpb 5-shot, every choice its own row: ${u.requests} requests in ${u.seconds.toFixed(1)} s = ${u.examples_per_s.toFixed(2)} examples/s; shared context ${(r.examples_per_s / u.examples_per_s).toFixed(2)}x faster; metrics differ by at most ${diff.toExponential(1)}`);
      figures.push(['fpb_5shot_unshared_examples_per_s', u.examples_per_s], ['fpb_5shot_shared_speedup', r.examples_per_s / u.examples_per_s], ['fpb_5shot_shared_max_metric_diff', diff]);
    }
  }
  engine.dispose();
  await tok.close();
  for (const [k, v] of figures) console.log(`${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`);
}

main().catch((e: unknown) => {
  console.error(`bench-eval: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
