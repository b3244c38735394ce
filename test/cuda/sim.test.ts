/**
 * The CUDA engine's own code (native/cuda/engine.cu, kernels.cuh, gemm.cu), compiled unchanged by
 * g++ against the SIMT simulator and run on the CPU: the simulator's own checks, then the engine
 * against the PyTorch golden fixtures and the CPU engine, deterministic and recompute-exact, under
 * each thread order the simulator can impose; the fused attention kernels against the unfused path.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernelName, mmaWork, type Counted, type MmaKernel } from '../../scripts/model-cuda.js';
import { goldenDir } from '../helpers/golden.js';
import { ROOT } from '../../src/util/paths.js';
import { ORDERS, SIM_DIR, runSim, simMissing, verdicts } from './sim.js';

const VARIANT = path.join(ROOT, 'test', 'engine', 'fixtures', 'neox-tiny-variant');
const simCheck = path.join(SIM_DIR, 'sim_check');
const cudaCheck = path.join(SIM_DIR, 'cuda_check');
// Parity on sequences of 40 with attention rows of 13 and LM-head chunks of 50: four row blocks
// (13, 26, 39 and 40 keys: widths that are not multiples of 4) and three head chunks, each with a
// ragged end, at a cost CI can afford.
const PARITY = { CPT_CUDA_ATTN_ROWS: '13', CPT_CUDA_HEAD_ROWS: '50', CPT_CUDA_SORT_TILE: '32' };

describe('the SIMT simulator', () => {
  it('was built by npm ci', () => {
    expect(simMissing()).toBeUndefined();
  });

  it('its cuBLASLt agrees with the CPU engine GEMM over random shapes, layouts and batch strides, bitwise repeatably', async () => {
    const r = await runSim(simCheck, ['gemm', '300']);
    expect(verdicts(r), r.out).toEqual({ gemm_vs_cpu: 'pass', gemm_bitwise_repeat: 'pass' });
  });

  it('its cuBLASLt refuses what the real one refuses', async () => {
    const r = await runSim(simCheck, ['refuse']);
    expect(r.status, r.out).toBe(0);
    expect(Object.keys(verdicts(r))).toEqual(expect.arrayContaining(['refuse_k_mismatch', 'refuse_ld_below_rows', 'refuse_unsupported_types', 'refuse_broken_alignment_promise', 'refuse_host_operand', 'refuse_algo_of_another_problem', 'refuse_operand_past_allocation']));
  });

  it('answers launch limits, copies and bad pointers as the runtime does; poisons memory; rounds bf16 to nearest even; captures streams into graphs', async () => {
    const r = await runSim(simCheck, ['runtime']);
    expect(r.status, r.out).toBe(0);
    expect(Object.values(verdicts(r)).every((v) => v === 'pass') && r.values.size >= 21).toBe(true);
    expect(verdicts(r)).toMatchObject({ capture_records_and_replays: 'pass', capture_refuses_sync_copy: 'pass', capture_refuses_legacy_stream: 'pass', capture_refused_work_not_run: 'pass' });
  });

  it('models ldmatrix (plain and transposed) and mma.sync in PTX\'s layouts against a scalar product, cp.async landing at its wait, and ex2.approx.ftz with its flushed subnormals; refuses what they refuse; counts ldmatrix\'s bank conflicts', async () => {
    const r = await runSim(simCheck, ['mma']);
    expect(verdicts(r), r.out).toEqual({
      mma_ldmatrix_trans_product: 'pass', mma_ldmatrix_product: 'pass', ldmatrix_misaligned_refused: 'pass', ldmatrix_global_refused: 'pass',
      ldmatrix_half_warp_detected: 'pass', ldmatrix_bank_conflicts_counted: 'pass', cp_async_lands_at_wait: 'pass', cp_async_misaligned_refused: 'pass', cp_async_to_global_refused: 'pass', ex2_flushes_subnormals: 'pass',
    });
  });

  it('models shuffles, ballots and barriers, and names divergence', async () => {
    const r = await runSim(simCheck, ['simt']);
    expect(r.status, r.out).toBe(0);
    expect(verdicts(r)).toMatchObject({ divergent_shuffle_detected: 'pass', divergent_barrier_detected: 'pass', different_barriers_detected: 'pass', partial_masks: 'pass' });
  });
});

describe('the CUDA engine\'s switches', () => {
  it('refuses a value it does not know in one line, and says when an opted-in attention cannot run', async () => {
    const typo = await runSim(cudaCheck, ['golden', goldenDir()], { CPT_CUDA_ATTENTION: 'flash' });
    expect(typo.status).not.toBe(0);
    expect(typo.out).toContain('CPT_CUDA_ATTENTION=flash: expected one of unfused, mma');
    const graphs = await runSim(cudaCheck, ['golden', goldenDir()], { CPT_CUDA_GRAPHS: 'off' });
    expect(graphs.out).toContain('CPT_CUDA_GRAPHS=off: expected one of 1, 0');
    // the golden fixture's head dimension is 16: no fused kernels for it, so the unfused path runs, and says so
    const fallback = await runSim(cudaCheck, ['golden', goldenDir()], { CPT_CUDA_ATTENTION: 'mma' });
    expect(verdicts(fallback), fallback.out).toEqual({ golden_fp32: 'pass', golden_bf16: 'pass' });
    expect(fallback.out).toContain('cpt: CPT_CUDA_ATTENTION=mma: its kernels are bf16 only; the unfused attention runs');
    expect(fallback.out).toContain('cpt: CPT_CUDA_ATTENTION=mma: no kernels for this head dimension or too little shared memory; the unfused attention runs');
  });
});

// In shuffled order with biases, residual sums and bias gradients in cuBLASLt's epilogues (the default), otherwise by
// kernels (CPT_CUDA_EPILOGUES=0); in forward order with the softmax by a block per row (the default), otherwise by a warp
// per row (CPT_CUDA_SOFTMAX=warp); in forward order with cp.async copies landing as issued, otherwise at the wait.
describe.each(ORDERS)('the CUDA engine on the simulator, threads in %s order', (order) => {
  const env = {
    CPT_SIM_ORDER: order,
    CPT_SIM_SEED: '7',
    CPT_CUDA_EPILOGUES: order === 'shuffled' ? '1' : '0',
    CPT_CUDA_SOFTMAX: order === 'forward' ? 'block' : 'warp',
    CPT_SIM_CP_ASYNC: order === 'forward' ? 'early' : 'late',
  };

  it('matches both golden fixtures in fp32 and bf16', async () => {
    for (const dir of [goldenDir(), VARIANT]) {
      const r = await runSim(cudaCheck, ['golden', dir], env);
      expect(verdicts(r), r.out).toEqual({ golden_fp32: 'pass', golden_bf16: 'pass' });
    }
  });

  // The embedding gradient's device sort: 120 ids in tiles of 32 (4 tiles, the last ragged), and 3 passes for a vocabulary past 2^16.
  it('matches the CPU engine on five configs (one with widths that are not multiples of 4; one AdamW step), sorts the embedding gradient on the device, clips and skips on the device, is deterministic, recomputation changes no bit, and CUDA graphs replay steps (accumulated or not) bitwise', async () => {
    const r = await runSim(cudaCheck, ['parity', '40', '2'], { ...env, ...PARITY });
    expect(verdicts(r), r.out).toEqual({
      'parity_parallel-r0.25-untied': 'pass', 'parity_sequential-r0.5-tied-tanh': 'pass', 'parity_parallel-r0-untied': 'pass', 'parity_sequential-r1-untied': 'pass',
      'parity_ragged-d34-i70-v999': 'pass', embedding_3_passes: 'pass', adamw_clip: 'pass', adamw_nonfinite: 'pass',
      deterministic_fp32: 'pass', recompute_bitwise_fp32: 'pass', deterministic_bf16: 'pass', recompute_bitwise_bf16: 'pass',
      graphs_bitwise_fp32: 'pass', graphs_bitwise_bf16: 'pass',
    });
    // captured on a shape's second step, replayed on its third, dropped by another shape, captured again; with two
    // accumulated micro-batches a step, the one that writes the gradient and the one that adds to it a graph each
    expect([r.values.get('graph_launches_fp32'), r.values.get('graph_launches_bf16')]).toEqual(['7', '7']);
  });

  it(`fused attention (bf16 on mma.sync tiles, CPT_CUDA_ATTENTION=mma; forward and backward) is as accurate against the CPU engine as the unfused path, head dimensions 32, 64, 80 (Pythia-2.8b's), 128 and 256, bitwise repeatably${order === 'forward' ? '; the performance model\'s count of their mma.sync operations and ldmatrix bytes is the simulator\'s, and those loads meet no bank conflict' : ''}`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-sim-trace-')), trace = path.join(dir, 'trace.jsonl');
    try {
      const r = await runSim(cudaCheck, ['flash', '80'], { ...env, ...(order === 'forward' ? { CPT_SIM_TRACE: trace } : {}) });
      expect(verdicts(r), r.out).toEqual({ mma_hd32: 'pass', mma_hd64: 'pass', mma_hd80: 'pass', mma_hd128: 'pass', mma_hd256: 'pass' });
      if (order !== 'forward') return;
      // every launch of the mma.sync kernels (head dimension from the scale argument, 1 / sqrt(hd); T and H before it)
      const counted = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as object).filter((e): e is Counted => 'counted' in e);
      const seen = new Set<string>();
      for (const c of counted) {
        const kernel = kernelName(c.counted) as MmaKernel, a = c.args as number[];
        const hd = Math.round(a.at(-1)! ** -2), T = a.at(-3)!;
        const { mma, ldmatrix } = mmaWork(kernel, hd, T, c.grid[1]!);
        // one 128-byte wavefront per 8x8 matrix: the padded tile rows put a matrix's 8 rows on distinct banks
        expect({ kernel, hd, mma: c.mma, ldmatrix: c.ldmatrix, wavefronts: c.wavefronts }).toEqual({ kernel, hd, mma, ldmatrix, wavefronts: ldmatrix / 128 });
        seen.add(`${kernel} ${hd}`);
      }
      expect(seen.size).toBe(3 * 5); // three kernels at five head dimensions
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
