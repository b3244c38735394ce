/**
 * Puts next to the built CUDA engine (native/build-cuda/) the data native/cuda/verify.sh reads
 * on a GPU machine, which has neither Node nor the data kit: the PyTorch golden fixture, a
 * stream of real kit tokens (the tiny recipe's financial corpus, GPT-NeoX tokenizer, EOS between
 * documents, uint16) and the CPU engine's loss curve on them (slow on few cores: computed here,
 * before a GPU is held). Then carry native/build-cuda to the GPU machine and run verify.sh there.
 *   npm run cuda:bundle [-- --tokens N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadRecipe } from '../src/recipe/load.js';
import { loadTokenizer, prepareCorpus, readDocs } from '../src/data/index.js';
import { CUDA_GPU_LIB_PATH, CUDA_SIM_LIB_PATH, cudaStatus } from '../src/engine/native/index.js';
import { goldenDir } from '../test/helpers/golden.js';
import { ROOT } from '../src/util/paths.js';

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
// it, the simulator's included.
const ref = path.join(out, 'cpu-160m.ref');
console.log(`computing the CPU reference curve (200 steps of 160m, ${os.availableParallelism()} threads) ...`);
const refRun = spawnSync(path.join(path.dirname(CUDA_SIM_LIB_PATH), 'cuda_check'), ['reference', path.join(out, 'kit-tokens.u16'), ref, '200', '2', '256', String(os.availableParallelism())], { stdio: 'inherit' });
if (refRun.status !== 0) throw new Error(`cuda_check reference failed (exit ${refRun.status})`);
console.log(`wrote ${path.relative(ROOT, ref)}; carry native/build-cuda and run: bash native/cuda/verify.sh`);
