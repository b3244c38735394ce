/**
 * What the simulator is for: finding GPU bugs without a GPU. The engine runs once under
 * AddressSanitizer + UBSan; then bugs are put into copies of its kernels (barriers taken out, an
 * index one past the end, a shuffle that only half a warp reaches, masks off by one, ...) and each
 * copy must fail.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { goldenDir } from '../helpers/golden.js';
import { ROOT } from '../../src/util/paths.js';
import { ASAN_DIR, SIM_DIR, run, runSim, simMissing, verdicts } from './sim.js';

const CUDA_SRC = path.join(ROOT, 'native', 'cuda');
const jobs = `-j${Math.min(4, os.availableParallelism())}`;

async function make(args: string[], cwd = CUDA_SRC): Promise<void> {
  const r = await run('make', ['-s', ...args, jobs], { cwd, timeoutMs: 600_000 });
  if (r.status !== 0) throw new Error(`make ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

describe('the CUDA engine under AddressSanitizer + UBSan, on the simulator', () => {
  it('builds and runs golden, parity, fused attention and the simulator checks with no report', async () => {
    expect(simMissing()).toBeUndefined();
    await make(['sim', 'SAN=1']);
    const runs = [
      await runSim(path.join(ASAN_DIR, 'cuda_check'), ['golden', goldenDir()]),
      await runSim(path.join(ASAN_DIR, 'cuda_check'), ['parity', '24', '1'], { CPT_CUDA_ATTN_ROWS: '16', CPT_CUDA_HEAD_ROWS: '40', CPT_CUDA_SORT_TILE: '16', CPT_CUDA_EPILOGUES: '1', CPT_CUDA_SOFTMAX: 'warp', CPT_SIM_ORDER: 'shuffled' }),
      await runSim(path.join(ASAN_DIR, 'sim_check'), ['runtime']),
      await runSim(path.join(ASAN_DIR, 'sim_check'), ['simt']),
      await runSim(path.join(ASAN_DIR, 'sim_check'), ['mma']),
      await runSim(path.join(ASAN_DIR, 'cuda_check'), ['flash', '70'], { CPT_SIM_ORDER: 'shuffled' }),
    ];
    for (const r of runs) {
      expect(r.out).not.toMatch(/ERROR: AddressSanitizer|runtime error:/);
      expect(r.status, r.out).toBe(0);
      expect(Object.values(verdicts(r)).length).toBeGreaterThan(0);
      expect(Object.values(verdicts(r)).every((v) => v === 'pass'), r.out).toBe(true);
    }
  });
});

// A copy of native/cuda with one edit to `file` (kernels.cuh unless named), built as a library
// beside the simulator's cuda_check (found through its $ORIGIN rpath), run on the golden fixture
// (or `args`, in the thread order `order`).
async function mutant(from: string, to: string, file = 'kernels.cuh', args = ['golden', goldenDir()], order?: 'reverse') {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-mutant-'));
  cpSync(CUDA_SRC, path.join(dir, 'native', 'cuda'), { recursive: true });
  mkdirSync(path.join(dir, 'native', 'src'));
  for (const h of ['model.h', 'ops.h']) copyFileSync(path.join(ROOT, 'native', 'src', h), path.join(dir, 'native', 'src', h));
  const edited = path.join(dir, 'native', 'cuda', file);
  const src = readFileSync(edited, 'utf8');
  if (!src.includes(from)) throw new Error(`${file} no longer has: ${from}`);
  writeFileSync(edited, src.replace(from, to));
  const out = path.join(dir, 'out');
  await make(['sim-lib', `SIMOUT=${out}`], path.join(dir, 'native', 'cuda'));
  copyFileSync(path.join(SIM_DIR, 'cuda_check'), path.join(out, 'cuda_check'));
  return await runSim(path.join(out, 'cuda_check'), args, order ? { CPT_SIM_ORDER: order } : {});
}

// The flash check's verdicts when a mutation breaks the mma attention at every head dimension it has kernels for.
const EVERY_HEAD_DIM_FAILS = { mma_hd32: 'FAIL', mma_hd64: 'FAIL', mma_hd80: 'FAIL', mma_hd128: 'FAIL', mma_hd256: 'FAIL' };

describe('mutations of the kernels are caught', () => {
  it('a removed barrier (blockSum reuses its shared memory too early): wrong values', async () => {
    const r = await mutant('  __syncthreads();  // sh may still be read by a previous call\n', '');
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual({ golden_fp32: 'FAIL', golden_bf16: 'FAIL' });
  });

  it('the parallel residual\'s two layer norms backward in one pass dropping the second norm\'s term (ln1\'s): wrong gradients', async () => {
    const r = await mutant('      for (int n = 0; n < Ns; n++)\nCPT_UNROLL\n        for (int e = 0; e < W; e++) v.v[e] += rs', '      for (int n = 0; n < 1; n++)\nCPT_UNROLL\n        for (int e = 0; e < W; e++) v.v[e] += rs');
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual({ golden_fp32: 'FAIL', golden_bf16: 'FAIL' });
  });

  it('an index one past the end (the embedding copy): an out-of-bounds fault naming kernel, block and thread', async () => {
    const r = await mutant('for (int j = threadIdx.x; j < D; j += blockDim.x) x[r * D + j] = src[j];', 'for (int j = threadIdx.x; j <= D; j += blockDim.x) x[r * D + j] = src[j];');
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/cuda-sim: kernel embedKernel block \(\d+,0,0\): (out-of-bounds: an access \d+ bytes past the end of allocation #\d+|a write \d+ bytes past the end of allocation #\d+)/);
  });

  // T = 150: three key tiles in a block with more than one warp of real rows, so that a copy into the
  // tiles two steps back meets warps still reading them
  it('the mma.sync attention forward copying the next key tiles over ones other warps still read (a removed barrier): wrong outputs', async () => {
    const r = await mutant('    __syncthreads();  // the tiles before these are no longer read: the next ones take their place\n', '', 'attention.cuh', ['flash', '150']);
    expect(r.status).not.toBe(0);
    expect(Object.entries(verdicts(r)).filter(([k, v]) => k.startsWith('mma_') && v === 'FAIL').length).toBeGreaterThan(0);
  });

  it('the mma.sync attention forward skipping the key tiles on its diagonal (the test for a tile none of its rows sees made too wide): wrong outputs', async () => {
    const r = await mutant('if (k0 > w0 + 16 * MT - 1 || w0 >= T_) continue;', 'if (k0 + KB > w0 + 16 * MT || w0 >= T_) continue;', 'attention.cuh', ['flash', '70']);
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual(EVERY_HEAD_DIM_FAILS);
  });

  // The causal mask runs only on the tiles that need it; a test of that need that forgets the diagonal leaves it off there.
  it('the mma.sync attention forward leaving the mask off the key tiles on its diagonal: wrong outputs', async () => {
    const r = await mutant('if (k0 + KB - 1 > w0 || k0 + KB > T_)', 'if (k0 + KB > T_)', 'attention.cuh', ['flash', '70']);
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual(EVERY_HEAD_DIM_FAILS);
  });

  it('the mma.sync attention forward reading key tiles before its cp.async copies are waited for: wrong outputs (the simulator lands them at the wait)', async () => {
    const r = await mutant('    cpAsyncWait<1>();  // this thread\'s copies of these tiles have landed\n', '', 'attention.cuh', ['flash', '70']);
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toMatchObject({ mma_hd32: 'FAIL', mma_hd64: 'FAIL', mma_hd128: 'FAIL', mma_hd256: 'FAIL' });
  });

  // The backward's next query (dK/dV) or key (dQ) block lands by cp.async while this one is used,
  // at head dimensions up to 64 (32 and 64 here; the others load each block between two barriers).
  for (const [pass, block] of [['dK/dV', 'query'], ['dQ', 'key']]) {
    it(`the mma.sync attention's ${pass} pass reading a ${block} block before its cp.async copies are waited for: wrong gradients`, async () => {
      const r = await mutant(`      cpAsyncWait<0>();  // this thread's copies of this ${block} block have landed\n`, '', 'attention.cuh', ['flash', '70']);
      expect(r.status).not.toBe(0);
      expect(verdicts(r)).toEqual({ mma_hd32: 'FAIL', mma_hd64: 'FAIL', mma_hd80: 'pass', mma_hd128: 'pass', mma_hd256: 'pass' });
    });
  }

  // Where two or more warps share a block of keys (or queries) and each writes part of the P and dS
  // tiles that all of them read.
  it('the mma.sync attention backward reading P and dS before the other warps of its keys wrote them (a removed barrier): wrong gradients', async () => {
    const r = await mutant(
      '    __syncthreads();\n    // The next query block into the other buffer',
      '    // The next query block into the other buffer',
      'attention.cuh', ['flash', '70'],
    );
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toMatchObject({ mma_hd128: 'FAIL', mma_hd256: 'FAIL' });
  });

  // Where warps share rows (all but head dimension 80) the score products are split: a group's first
  // warps write P, the others read it back for dS. Reverse thread order runs the readers first
  // (forward order would hide it).
  it('the mma.sync attention backward\'s dP warps reading P before the S warps wrote it (a removed barrier): wrong gradients', async () => {
    const r = await mutant('      __syncthreads();  // P^T is in shared memory\n', '', 'attention.cuh', ['flash', '70'], 'reverse');
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual({ mma_hd32: 'FAIL', mma_hd64: 'FAIL', mma_hd80: 'pass', mma_hd128: 'FAIL', mma_hd256: 'FAIL' });
    // the poisoned shared memory's NaNs reach the gradients, and the check counts them
    expect(r.out).toMatch(/mma_hd256_error .*\| grads inf /);
  });

  it('the mma.sync attention backward leaving the mask off the dK/dV pass\'s diagonal tiles: wrong gradients', async () => {
    const r = await mutant('if (!dPWarp && (q0 + qc0 < k0 + r0 + 16 * MT - 1 || q0 + qc0 + 8 * NQ > T_))', 'if (!dPWarp && (q0 + qc0 + 8 * NQ > T_))', 'attention.cuh', ['flash', '70']);
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual(EVERY_HEAD_DIM_FAILS);
  });

  it('the mma.sync attention\'s dQ pass letting each query see its next key (the causal mask off by one): wrong gradients', async () => {
    const r = await mutant('if (key > row[m][i >> 1] || row[m][i >> 1] >= T_)', 'if (key > row[m][i >> 1] + 1 || row[m][i >> 1] >= T_)', 'attention.cuh', ['flash', '70']);
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toMatchObject({ mma_hd32: 'FAIL', mma_hd64: 'FAIL', mma_hd128: 'FAIL', mma_hd256: 'FAIL' });
  });

  // The golden fixture's rotary half is 2 dimensions: a 16-byte run of 8 bf16 taken there reads past the rotary tables.
  it('the head split taking 16-byte runs across the rotary halves (its width not checked against them): caught', async () => {
    const r = await mutant('(uintptr_t)k | (uintptr_t)v, hd, half);', '(uintptr_t)k | (uintptr_t)v, hd);');
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/cuda-sim: kernel \(splitHeadsKernel<\w+, Act>\) block \(\d+,0,0\): out-of-bounds|golden_bf16=FAIL/);
  });

  // Head dimensions 64, 128 and 256 (rotary halves of 8, 16 and 32) write the query/key/value gradient from the mma
  // backward itself; 32 and 80 (halves of 4 and 10) go through the merge kernel and are untouched.
  it('the mma.sync attention backward undoing the rotary embedding with the sine\'s sign flipped: wrong gradients', async () => {
    const r = await mutant('(n < H8 ? 1.f : -1.f)', '(n < H8 ? -1.f : 1.f)', 'attention.cuh', ['flash', '70']);
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toMatchObject({ mma_hd32: 'pass', mma_hd64: 'FAIL', mma_hd80: 'pass', mma_hd128: 'FAIL', mma_hd256: 'FAIL' });
  });

  it('the embedding gradient\'s sort scattering ids before its tile is loaded (a removed barrier): stale ids, caught', async () => {
    const r = await mutant('  __syncthreads();\n  int o = starts[d * gridDim.x + t];', '  int o = starts[d * gridDim.x + t];');
    expect(r.status).not.toBe(0);
    // the stale shared memory's ids either send the gradient out of bounds or to the wrong rows
    expect(r.out).toMatch(/cuda-sim: kernel embedBackKernel block \(\d+,0,0\): out-of-bounds|golden_fp32=FAIL/);
  });

  it('work queued on the legacy stream inside a step captured as a CUDA graph: the capture fails, naming the call', async () => {
    const r = await mutant('    CUDA_CHECK(cudaMemsetAsync(dX_, 0, ND * sizeof(float), s_));', '    CUDA_CHECK(cudaMemsetAsync(dX_, 0, ND * sizeof(float)));', 'engine.cu', ['parity', '24', '1']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/cudaMemsetAsync on the legacy default stream while a stream is capturing\] in cudaMemsetAsync\(dX_, 0, ND \* sizeof\(float\)\) \(engine\.cu:\d+\)/);
  });

  it('training\'s cross-entropy reading its row from shared memory before its cp.async copies are waited for: wrong gradients', async () => {
    const r = await mutant('  cpAsyncWait<0>();  // this thread\'s copies have landed: it reads only those before the barriers in blockLse\n', '');
    expect(r.status).not.toBe(0);
    expect(verdicts(r)).toEqual({ golden_fp32: 'FAIL', golden_bf16: 'FAIL' });
  });

  it('a bias gradient written by the product\'s epilogue on a later micro-batch too (not added to the accumulated one): wrong gradients', async () => {
    const r = await mutant('Epilogue{nullptr, adds() ? part_ : db}', 'Epilogue{nullptr, db}', 'engine.cu', ['parity', '24', '1']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/FAIL grad\.gpt_neox\.layers\.0\.attention\.dense\.bias/);
  });

  it('a shuffle reached by half a warp: a warp-divergence error naming both places', async () => {
    const r = await mutant(
      '  v = warpSum(v);\n  __syncthreads();  // sh may',
      '  if ((threadIdx.x & 31) < 16) v = warpSum(v);\n  __syncthreads();  // sh may',
    );
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/warp-divergent __shfl_xor_sync at kernels\.cuh:\d+ \(mask 0xffffffff\): threads 0-15: __shfl_xor_sync at kernels\.cuh:\d+; threads 16-31: __syncthreads at kernels\.cuh:\d+/);
  });
});
