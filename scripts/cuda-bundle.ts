/**
 * Puts next to the built CUDA engine (native/build-cuda/) the data native/cuda/verify.sh reads
 * on a GPU machine, which has neither Node nor the data kit: the PyTorch golden fixture, a
 * stream of real kit tokens (the tiny recipe's financial corpus, GPT-NeoX tokenizer, EOS between
 * documents, uint16) and the CPU engine's loss curve on them (slow on few cores: computed here,
 * before a GPU is held); and cpt itself for `cpt train` there: the bundled CLI (dist/cpt), this
 * Node binary (node.xz), a slice of the data kit and a pythia-160m recipe on the cuda engine.
 * Then carry native/build-cuda, dist/cpt and native/build/Release/cpt_native.node to the GPU
 * machine and run verify.sh there.
 *   npm run cuda:bundle [-- --tokens N]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadRecipe } from '../src/recipe/load.js';
import { loadTokenizer, prepareCorpus, readDocs } from '../src/data/index.js';
import { CUDA_GPU_LIB_PATH, CUDA_SIM_LIB_PATH, cudaStatus } from '../src/engine/native/index.js';
import { goldenDir } from '../test/helpers/golden.js';
import { ROOT, dataDir } from '../src/util/paths.js';
import { stringify } from 'yaml';
import { BUNDLE_DIR, NODE_XZ, bundleCli } from './bundle-cli.js';
import { DERATED, GPUS, costTrace, shapeOf, traceStep } from './model-cuda.js';
import { issuePerMma } from './sass-cuda.js';
import { presetConfig } from '../src/model/presets.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '110000' } } });
const want = Number(values.tokens);
if (!existsSync(CUDA_GPU_LIB_PATH)) throw new Error(`${path.relative(ROOT, CUDA_GPU_LIB_PATH)} is missing: ${cudaStatus().reason}`);
const out = path.join(path.dirname(CUDA_GPU_LIB_PATH), 'data');
mkdirSync(path.join(out, 'neox-tiny'), { recursive: true });
for (const f of readdirSync(goldenDir())) writeFileSync(path.join(out, 'neox-tiny', f), readFileSync(path.join(goldenDir(), f)));

const r = await loadRecipe(path.join(ROOT, 'recipes', 'ets-dacp-tiny.yaml'));
await prepareCorpus(r.data.corpus, r.data.prepared_dir, { shardMb: r.data.shard_mb });
const tok = await loadTokenizer(r.data.tokenizer);
const ids: number[] = [];
for await (const docs of readDocs(r.data.prepared_dir)) {
  for (const t of await tok.encodeBatch(docs.map((d) => d.text))) ids.push(...t, tok.eosId);
  if (ids.length >= want) break;
}
await tok.close();
const u16 = Uint16Array.from(ids.slice(0, want));
writeFileSync(path.join(out, 'kit-tokens.u16'), u16);
console.log(`wrote ${path.relative(ROOT, out)}/neox-tiny and kit-tokens.u16 (${u16.length} tokens); carry native/build-cuda and run: bash native/cuda/verify.sh`);
// The reference curve of `cuda_check train` (CPU engine, fp32): any build of the harness computes
// it, the simulator's included. Kept while the tokens it was computed on are the same.
const ref = path.join(out, 'cpu-160m.ref');
const tokensSha = createHash('sha256').update(u16).digest('hex');
if (existsSync(ref) && existsSync(`${ref}.sha256`) && readFileSync(`${ref}.sha256`, 'utf8').trim() === tokensSha) {
  console.log(`kept ${path.relative(ROOT, ref)} (same tokens)`);
} else {
  console.log(`computing the CPU reference curve (200 steps of 160m, ${os.availableParallelism()} threads; ~9 min on 2 cores) ...`);
  const refRun = spawnSync(path.join(path.dirname(CUDA_SIM_LIB_PATH), 'cuda_check'), ['reference', path.join(out, 'kit-tokens.u16'), ref, '200', '2', '256', String(os.availableParallelism())], { stdio: 'inherit' });
  if (refRun.status !== 0) throw new Error(`cuda_check reference failed (exit ${refRun.status})`);
  writeFileSync(`${ref}.sha256`, tokensSha + '\n');
  console.log(`wrote ${path.relative(ROOT, ref)}`);
}

// cpt on the GPU machine: the CLI bundle, Node, the kit files a 160m run reads, and its recipe
// (fresh pythia-160m weights, one Reuters file, bf16 on the cuda engine, a few dozen steps).
await bundleCli();
writeFileSync(NODE_XZ, execFileSync('xz', ['-9', '-T0', '-c', process.execPath], { maxBuffer: 1 << 30 }));
const kit = path.join(out, 'kit');
for (const f of ['tokenizer/20B_tokenizer.json', 'corpus/fin/reuters21578/reut2-000.sgm', 'corpus/general/gutenberg_nltk/shakespeare-hamlet.txt']) {
  mkdirSync(path.dirname(path.join(kit, f)), { recursive: true });
  copyFileSync(path.join(dataDir(), f), path.join(kit, f));
}
writeFileSync(path.join(out, 'train-160m.yaml'), stringify({
  name: 'gpu-160m',
  method: 'dacp',
  run_dir: '/tmp/cpt-gpu-160m',
  data: {
    corpus: [{ name: 'reuters', path: '${CPT_DATA}/corpus/fin/reuters21578', format: 'reuters-sgml', include: 'reut2-000.sgm', encoding: 'latin1' }],
    pile_test: [{ name: 'hamlet', path: '${CPT_DATA}/corpus/general/gutenberg_nltk/shakespeare-hamlet.txt', format: 'text' }],
    tasks: [],
    prepared_dir: '/tmp/cpt-gpu-160m-prepared',
    fin_test_fraction: 0.05,
    tokenizer: '${CPT_DATA}/tokenizer/20B_tokenizer.json',
  },
  model: { init: 'pythia-160m' },
  train: { lr: 6e-4, min_lr: 6e-5, warmup: 0.1, batch_tokens: 16384, micro_batch: 4, seq_len: 2048, epochs: 3, max_steps: 40, seed: 1 },
  monitor: { every: 20, fin_test_tokens: 16384, pile_test_tokens: 16384 },
  checkpoint: { every: 40, keep: 1 },
  engine: { kind: 'cuda', precision: 'bf16' },
}));
// The performance model's per-kernel figures for the shapes verify.sh benchmarks (bf16, [4, 2048],
// H200), printed there beside the measured ones; the attention's instruction issue from the library just built.
const h200 = GPUS.find((g) => g.name === 'H200')!;
const sass = issuePerMma();
if ('missing' in sass) console.log(`cuda:bundle: the model's attention issue not costed: ${sass.missing}`);
for (const m of ['160m', '410m', '1b']) {
  for (const variant of ['unfused', 'mma'] as const) { // and the opt-in attention, as verify.sh's _mma benchmarks
    const c = presetConfig(`pythia-${m}`), events = traceStep(c, 4, 2048, variant), s = shapeOf(c, 4, 2048, 'perMma' in sass ? sass.perMma : undefined);
    const derated = new Map(costTrace(events, s, h200, DERATED).map((l) => [l.what, l.seconds]));
    const rows = costTrace(events, s, h200).map((l) => [l.what, l.launches, (l.seconds * 1e3).toFixed(4), (derated.get(l.what)! * 1e3).toFixed(4), l.bound].join('\t'));
    writeFileSync(path.join(out, `model-${m}${variant === 'unfused' ? '' : `_${variant}`}.tsv`), rows.join('\n') + '\n');
  }
}
console.log(`wrote ${path.relative(ROOT, BUNDLE_DIR)}, ${path.relative(ROOT, NODE_XZ)}, ${path.relative(ROOT, kit)}, train-160m.yaml and model-{160m,410m,1b}[_mma].tsv`);
console.log('carry native/build-cuda, dist/cpt and native/build/Release/cpt_native.node; run: bash native/cuda/verify.sh');
