/**
 * Selection scoring throughput on the data kit's financial corpus (Reuters-21578 + 2023 10-K
 * sections): POS entropy and hashed similarity over the whole corpus on worker threads (one per
 * core), perplexity under a Pythia-shaped proxy (pythia-14m preset, random init) on a slice;
 * then scale-out: `cpt select --worker` tokenizing and scoring the corpus (ETA-DACP perplexity) as one
 * worker process and as two at once, one core each, from empty caches (select_scale_2 = the
 * speedup); then end to end: `cpt train recipes/ets-dacp-tiny.yaml` from an empty corpus cache and
 * run directory, with this checkout and, given --before REV, with REV (a git worktree sharing
 * node_modules and the native build), e.g. the commit before the single tokenization.
 * Ends with name=value lines.
 * Usage: npm run bench:select [-- --ppl-docs N --ppl-tokens T --engine native|cuda|tfjs --before REV]
 */
import os from 'node:os';
import path from 'node:path';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { loadTokenizer, prepareCorpus, readDocs, taskTexts } from '../src/data/index.js';
import { createEngine, defaultEngineKind, parseEngineKind } from '../src/engine/index.js';
import { loadModel, saveModel } from '../src/model/load.js';
import { TextPoolScorer, PerplexityScorer } from '../src/select/scorers.js';
import { TextScorerPool } from '../src/select/text-pool.js';
import { FIN_TASKS } from '../src/data/tasks/index.js';
import { EmbedderSchema } from '../src/select/recipe.js';
import { ROOT, dataDir } from '../src/util/paths.js';
import { checkoutBefore } from './worktree.js';
import type { EmbedderSpec, SourceSpec } from '../src/recipe/types.js';

const { values: args } = parseArgs({
  options: {
    'ppl-docs': { type: 'string', default: '32' },
    'ppl-tokens': { type: 'string', default: '64' },
    engine: { type: 'string' },
    before: { type: 'string' },
    'worker-ppl-tokens': { type: 'string', default: '32' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'cpt-bench-select') },
  },
});

const kit = dataDir();
const spec = (name: string, p: string, format: SourceSpec['format'], extra: Partial<SourceSpec>): SourceSpec => ({ name, path: p, format, fields: [], encoding: 'utf-8', skip_bad: false, ...extra });
const corpus = [
  spec('reuters', path.join(kit, 'corpus/fin/reuters21578'), 'reuters-sgml', { include: '*.sgm', encoding: 'latin1' }),
  spec('sec10k', path.join(kit, 'corpus/fin/sec10k_2023'), 'json', { fields: ['item1', 'item1a', 'item7', 'item7a'] }),
];
const prepared = path.join(args.work!, 'prepared');
process.stderr.write(`bench-select: preparing the financial corpus into ${prepared} (cached)\n`);
await prepareCorpus(corpus, prepared, { shardMb: 8 });
const texts: string[] = [];
for await (const b of readDocs(prepared)) for (const d of b) texts.push(d.text);
const mb = texts.reduce((s, t) => s + Buffer.byteLength(t), 0) / 1e6;
process.stderr.write(`bench-select: ${texts.length} documents, ${mb.toFixed(1)} MB; ${os.availableParallelism()} cores (machine shared with other work)\n`);

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
}

/** Score in batches of ~4 MB, as the scoring pass does per record batch. */
async function scoreAll(score: (xs: string[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < texts.length; ) {
    let j = i, c = 0;
    while (j < texts.length && c < 4e6) c += texts[j++].length;
    await score(texts.slice(i, j));
    i = j;
  }
}

// Entropy: count words with the pool's own word count.
const ent = new TextScorerPool({ hashed: null, entropy: true });
await ent.score(texts.slice(0, 200)); // start workers / load the tagger outside the timing
let words = 0;
const [, entS] = await timed(() =>
  scoreAll(async (xs) => {
    words += (await ent.score(xs)).words;
  }),
);
await ent.close();
process.stderr.write(`bench-select: entropy ${words} words in ${entS.toFixed(2)} s\n`);

const tasks: string[] = [];
for (const t of FIN_TASKS) tasks.push(...(await taskTexts(t, 'train', kit)));
const e: EmbedderSpec = EmbedderSchema.parse({}); // the recipe's defaults: hashed uni+bigrams
const sim = new TextPoolScorer({ hashed: { spec: e, taskTexts: tasks } });
await sim.score(texts.slice(0, 200));
const [, simS] = await timed(() => scoreAll((xs) => sim.score(xs)));
await sim.close();
process.stderr.write(`bench-select: similarity ${mb.toFixed(1)} MB in ${simS.toFixed(2)} s\n`);

// Perplexity: a slice, tokenized outside the timing.
const nPpl = Number(args['ppl-docs']), pplTokens = Number(args['ppl-tokens']);
const tok = await loadTokenizer(path.join(kit, 'tokenizer/20B_tokenizer.json'));
const ids = await tok.encodeBatch(texts.slice(0, nPpl));
await tok.close();
const m = await loadModel('pythia-14m');
const kind = args.engine ? parseEngineKind(args.engine) : await defaultEngineKind();
const engine = await createEngine(kind, m.config);
engine.loadWeights(m.weights);
const ppl = new PerplexityScorer(engine, pplTokens);
await ppl.score([], ids.slice(0, 4));
const [, pplS] = await timed(() => ppl.score([], ids));
const scored = ids.reduce((s, d) => s + Math.min(d.length, pplTokens), 0);
// The engine alone on full, unpadded rows of the same length: the ceiling for scoring.
const rows = 8, flat = new Int32Array(rows * pplTokens).map((_, i) => (i * 7919) % 50000);
const [, rawS] = await timed(async () => { for (let k = 0; k < 4; k++) engine.tokenLogprobs(flat, rows, pplTokens); });
engine.dispose();

// Scale-out: the repro ETA-DACP perplexity recipe (the costliest metric) on this corpus, scored by
// `cpt select --worker` with a pythia-14m-shaped proxy (random weights: the cost is the same) on
// each document's first --worker-ppl-tokens tokens, so the work dwarfs process start-up.
const recipeFile = path.join(args.work!, 'workers.yaml');
const doc = parseDocument(readFileSync(path.join(ROOT, 'recipes', 'repro', 'eta-dacp-ppl-hard.yaml'), 'utf8'));
doc.setIn(['name'], 'bench-select-workers');
doc.setIn(['run_dir'], path.join(args.work!, 'run'));
const workersPrepared = path.join(args.work!, 'prepared-workers'); // the recipe's own sources
doc.setIn(['data', 'prepared_dir'], workersPrepared);
doc.setIn(['data', 'shard_mb'], 2); // ~12 shards: work splits evenly between workers
const proxy = path.join(args.work!, 'proxy-14m');
await saveModel(proxy, m.config, m.weights);
doc.setIn(['model'], { init: proxy });
doc.setIn(['selection', 'perplexity_tokens'], Number(args['worker-ppl-tokens']));
writeFileSync(recipeFile, doc.toString());
const clean = () => {
  rmSync(path.join(workersPrepared, 'scores'), { recursive: true, force: true });
  rmSync(path.join(workersPrepared, 'tokens'), { recursive: true, force: true });
  rmSync(path.join(args.work!, 'run', 'selection', 'workers.json'), { force: true });
};
/** `cpt ARGV...` run by the checkout at `root` (stdout dropped), resolved when it exits 0. */
const spawnCpt = (root: string, argv: string[]) => new Promise<void>((resolve, reject) => {
  const c = spawn(process.execPath, [path.join(root, 'scripts', 'cpt.mjs'), ...argv], { cwd: root, env: { ...process.env, CPT_DATA: kit }, stdio: ['ignore', 'ignore', 'inherit'] });
  c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`cpt ${argv.join(' ')} (in ${root}) exited with ${code}`))));
});
const worker = (i: number, n: number) => spawnCpt(ROOT, ['select', recipeFile, '--worker', `${i}/${n}`, '--threads', '1']);
// Workers never write the corpus: `cpt prepare` first, outside the timing (as a launcher does).
await spawnCpt(ROOT, ['prepare', recipeFile]);
clean();
const [, w1S] = await timed(() => worker(0, 1));
clean();
const [, w2S] = await timed(() => Promise.all([worker(0, 2), worker(1, 2)]));
clean();

// End to end: the tiny ETS-DACP recipe trained from nothing but its base model.
const baseModel = path.join(ROOT, 'checkpoints', 'pythia-14m-base', 'final');
if (!existsSync(path.join(baseModel, 'config.json'))) {
  process.stderr.write('bench-select: training the base model first (recipes/pythia-14m-base.yaml, outside the timing)\n');
  await spawnCpt(ROOT, ['train', path.join(ROOT, 'recipes', 'pythia-14m-base.yaml')]);
}
async function endToEnd(root: string, tag: string): Promise<number> {
  const dir = path.join(args.work!, `e2e-${tag}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const d = parseDocument(readFileSync(path.join(ROOT, 'recipes', 'ets-dacp-tiny.yaml'), 'utf8'));
  d.setIn(['run_dir'], path.join(dir, 'run'));
  d.setIn(['data', 'prepared_dir'], path.join(dir, 'prepared'));
  d.setIn(['model'], { init: baseModel });
  const file = path.join(dir, 'ets-dacp-tiny.yaml');
  writeFileSync(file, d.toString());
  process.stderr.write(`bench-select: cpt train ets-dacp-tiny end to end (${tag}: ${root})\n`);
  const [, secs] = await timed(() => spawnCpt(root, ['train', file]));
  return secs;
}
let before: { rev: string; secs: number } | null = null;
if (args.before) {
  const { rev, tree } = checkoutBefore(args.before, args.work!, 'shared');
  before = { rev, secs: await endToEnd(tree, `before-${rev}`) };
}
const e2eS = await endToEnd(ROOT, 'now');

const f = (x: number, d = 1): string => x.toFixed(d);
console.log(`entropy:    ${texts.length} docs, ${words} words in ${f(entS, 2)} s`);
console.log(`similarity: ${texts.length} docs, ${f(mb)} MB in ${f(simS, 2)} s (hashed, dim ${e.dim}, ngrams ${e.ngrams})`);
console.log(`perplexity: ${ids.length} docs, ${scored} tokens in ${f(pplS, 2)} s (${engine.name}, pythia-14m shape, first ${pplTokens} tokens); engine alone ${f((4 * rows * pplTokens) / rawS, 0)} tok/s`);
console.log(`workers:    tokenizing + perplexity scoring (first ${args['worker-ppl-tokens']} tokens) of the corpus by cpt select --worker, one core each: 1 worker ${f(w1S, 2)} s, 2 workers ${f(w2S, 2)} s (process start and model load included)`);
console.log(`end to end: cpt train recipes/ets-dacp-tiny.yaml (prepare, tokenize, score, select, pack, train, monitor) ${f(e2eS)} s${before ? `; at ${before.rev} ${f(before.secs)} s` : ''}`);
console.log(`entropy_docs_s=${f(texts.length / entS)}`);
console.log(`entropy_words_s=${f(words / entS, 0)}`);
console.log(`entropy_mb_s=${f(mb / entS, 2)}`);
console.log(`similarity_docs_s=${f(texts.length / simS)}`);
console.log(`similarity_mb_s=${f(mb / simS, 2)}`);
console.log(`perplexity_docs_s=${f(ids.length / pplS, 2)}`);
console.log(`perplexity_tok_s=${f(scored / pplS, 0)}`);
console.log(`perplexity_engine_tok_s=${f((4 * rows * pplTokens) / rawS, 0)}`);
console.log(`select_workers_1_s=${f(w1S, 2)}`);
console.log(`select_workers_2_s=${f(w2S, 2)}`);
console.log(`select_scale_2=${f(w1S / w2S, 2)}`);
console.log(`select_worker_docs_s=${f(texts.length / w1S, 0)}`);
console.log(`train_ets_tiny_s=${f(e2eS)}`);
if (before) console.log(`train_ets_tiny_before_s=${f(before.secs)}`);
