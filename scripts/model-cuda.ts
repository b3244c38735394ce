/**
 * The CUDA engine's performance model (issue 28), to steer by without a GPU. The simulator traces
 * one training step and AdamW update of the real engine code in plan mode (nothing executes; the
 * second step, so the first's one-time work is left out):
 * every kernel launch with its arguments, every cuBLASLt product, every copy. Each kernel's FLOPs
 * and bytes moved are declared in COST below (one table); products are costed from their shapes.
 * Each launch is placed on a roofline of the GPU (dense bf16 tensor peak for bf16 products, fp32
 * peak otherwise, HBM bandwidth; for the attention on mma.sync tiles also mma.sync's rate and
 * shared memory's bandwidth) plus a per-launch overhead; a host copy costs PCIe time and,
 * unless it is asynchronous, a synchronisation. Prints, per shape and GPU, where the time goes, the step time and the MFU.
 * A MODEL: no GPU has run it (verify.sh measures the same breakdown when one is lent).
 *
 *   npm run model:cuda [-- --models pythia-160m,pythia-410m,pythia-1b --batch 4 --seq 2048 --json]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cudaPeakBytes } from '../src/engine/native/index.js';
import { derive, trainFlopsPerToken, type NeoXConfig } from '../src/model/config.js';
import { presetConfig } from '../src/model/presets.js';
import { issuePerMma } from './sass-cuda.js';

export interface Gpu { name: string; bf16: number; fp32: number; hbm: number; pcie: number; sms: number }
/** Dense peaks (no sparsity), bandwidths and multiprocessors from NVIDIA's data sheets. */
export const GPUS: Gpu[] = [
  { name: 'H100 SXM', bf16: 989.4e12, fp32: 66.9e12, hbm: 3.35e12, pcie: 25e9, sms: 132 },
  { name: 'H200', bf16: 989.4e12, fp32: 66.9e12, hbm: 4.8e12, pcie: 25e9, sms: 132 },
];
/**
 * Hopper's multiprocessor: 4096 dense bf16 tensor FLOPs a clock (so the peak's clock is
 * bf16 / (sms * 4096), 1.83 GHz), of which mma.sync reaches about two thirds (only wgmma reaches
 * the peak: the FlashAttention-3 paper, Shah et al. 2024, arXiv:2407.08608); shared memory
 * serves 128 bytes a clock (32 banks of 4 bytes) to ldmatrix and stores alike.
 */
export const SM_FLOPS_PER_CLOCK = 4096, MMA_SYNC = 2 / 3, SMEM_BYTES_PER_CLOCK = 128;
/** Its four schedulers each issue one warp instruction a clock. */
export const ISSUE_PER_CLOCK = 4;
/** One mma.sync.m16n8k16: 16 x 8 x 16 multiply-adds. */
export const MMA_FLOPS = 2 * 16 * 8 * 16;
const smemBandwidth = (g: Gpu) => (g.bf16 / SM_FLOPS_PER_CLOCK) * SMEM_BYTES_PER_CLOCK;
const issueRate = (g: Gpu) => (g.bf16 / SM_FLOPS_PER_CLOCK) * ISSUE_PER_CLOCK; // warp instructions a second, all multiprocessors
/**
 * The roofline is ideal (every product at the tensor peak, every kernel at full bandwidth); the
 * derated model takes what large cuBLASLt bf16 products and streaming kernels reach in practice.
 */
export interface Efficiency { tensor: number; hbm: number; smem: number; issue: number }
export const IDEAL: Efficiency = { tensor: 1, hbm: 1, smem: 1, issue: 1 };
export const DERATED: Efficiency = { tensor: 0.75, hbm: 0.8, smem: 0.8, issue: 0.8 };
/** Launch-to-launch cost of a kernel or product on a busy stream (no CUDA graph). */
export const LAUNCH_S = 3e-6;
/** A host copy waits for the stream: the queue drains (a synchronisation). */
export const SYNC_S = 10e-6;

/**
 * What a launch's cost depends on beyond its arguments. issuePerMma: the warp instructions the
 * attention kernels' main loops issue per mma.sync, by `kernel<hd>`, from the machine code nvcc
 * built (scripts/sass-cuda.ts); without it their instruction issue is not costed.
 */
export interface Shape { act: number; N: number; D: number; I: number; V: number; H: number; hd: number; T: number; B: number; issuePerMma?: Record<string, number> }
/**
 * tensor: the FLOPs run on tensor cores (bf16 peak), else on the fp32 units. mma: the kernel's
 * tensor work as the mma.sync operations it executes (masked and padded tiles included; at
 * MMA_SYNC of the peak), smem: the bytes it moves through shared memory, issue: the warp
 * instructions it issues (at ISSUE_PER_CLOCK a multiprocessor).
 */
type Cost = { flops: number; bytes: number; tensor?: boolean; mma?: number; smem?: number; issue?: number };
type Launch = { kernel: string; grid: number[]; block: number[]; args: (number | null)[] };
/** bgrad: the bias-gradient epilogue (BGRADB) also sums op(B)'s columns, as the product reads them; bias: the BIAS epilogue adds a bias as it writes. */
type Gemm = { gemm: 1; m: number; n: number; k: number; batch: number; bytesA: number; bytesB: number; bytesC: number; bytesD: number; bgrad?: 1; bias?: 1 };
/** async: queued from page-locked memory, the host not waiting. */
type Copy = { copy: 'h2d' | 'd2h' | 'd2d' | 'h2h'; bytes: number; async?: 1 };
/** In a trace of a run (not a plan), after a launch that used them: the mma.sync operations, ldmatrix bytes and their shared-memory wavefronts the simulator counted. */
export type Counted = { counted: string; grid: number[]; block: number[]; args: (number | null)[]; mma: number; ldmatrix: number; wavefronts: number };
type Event = Launch | Gemm | Copy | Counted | { memset: number };

const f32 = 4;
const rows = (l: Launch) => l.grid[0]! * l.grid[1]! * l.grid[2]!;
// Causal softmax of a block of query rows (args rows, cols; grid[1] = B*H) and its backward.
const softmaxCost = (a: number[], l: Launch, s: Shape): Cost => ({ flops: 5 * a[3]! * a[4]! * l.grid[1]!, bytes: a[3]! * a[4]! * l.grid[1]! * (f32 + s.act) });
const softmaxBackCost = (a: number[], l: Launch, s: Shape): Cost => ({ flops: 8 * a[5]! * a[6]! * l.grid[1]!, bytes: a[5]! * a[6]! * l.grid[1]! * (2 * f32 + 2 * s.act) });
/**
 * Each kernel's FLOPs and bytes moved, by its name in kernels.cuh, from its launch: arguments in
 * the kernel's order (a[i]), the grid, and the shape. Reads and writes of HBM once each (caches
 * are not modelled); a kernel the trace has and this table lacks stops the model.
 */
export const COST: Record<string, (a: number[], l: Launch, s: Shape) => Cost> = {
  embedKernel: (a, l) => ({ flops: 0, bytes: rows(l) * (4 + 2 * a[3]! * f32) }),
  castKernel: (a, _l, s) => ({ flops: 0, bytes: a[2]! * (f32 + s.act) }),
  // x read once, the statistics written once, one output in act per norm (two with a second norm: a[6])
  layerNormKernel: (a, l, s) => ({ flops: (a[6] ? 12 : 8) * rows(l) * a[9]!, bytes: rows(l) * a[9]! * (f32 + (a[6] ? 2 : 1) * s.act) + rows(l) * 8 }),
  // x, dx read, dx written, each norm's dy (a product's output, act) read (a second: a[6]), and dx's copy in act (a[8]) where the products read it next
  layerNormBackKernel: (a, l, s) => ({ flops: (a[6] ? 24 : 12) * rows(l) * a[9]!, bytes: rows(l) * a[9]! * (3 * f32 + (a[6] ? 2 : 1) * s.act + (a[8] ? s.act : 0)) }),
  colSumPartialsKernel: (a) => ({ flops: a[1]! * a[2]!, bytes: a[1]! * a[2]! * f32 }),
  lnParamPartialsKernel: (a, _l, s) => ({ flops: (a[4] ? 8 : 4) * a[5]! * a[6]!, bytes: a[5]! * a[6]! * (f32 + (a[4] ? 2 : 1) * s.act) }),
  reducePartialsKernel: (a) => ({ flops: a[1]! * a[2]!, bytes: (a[1]! + 1) * a[2]! * f32 }),
  // qkv in fp32 with its bias (a[1]) added here, or in act with the bias added by the product's epilogue
  splitHeadsKernel: (a, _l, s) => ({ flops: 6 * a[7]! * a[9]! * a[10]!, bytes: a[7]! * a[9]! * 3 * a[10]! * ((a[1] ? f32 : s.act) + s.act) }),
  mergeHeadsGradKernel: (a, _l, s) => ({ flops: 6 * a[6]! * a[8]! * a[9]!, bytes: a[6]! * a[8]! * 3 * a[9]! * (f32 + s.act) }),
  mergeHeadsKernel: (a, _l, s) => ({ flops: 0, bytes: a[2]! * a[4]! * a[5]! * 2 * s.act }),
  splitGradKernel: (a, _l, s) => ({ flops: 0, bytes: a[2]! * a[4]! * a[5]! * 2 * s.act }),
  // one block of query rows against `cols` keys for B*H heads: S in (fp32), P out (act)
  softmaxKernel: softmaxCost,
  softmaxBackKernel: softmaxBackCost,
  softmaxWarpKernel: softmaxCost, // the same work with a warp per row (CPT_CUDA_SOFTMAX=warp)
  softmaxBackWarpKernel: softmaxBackCost,
  biasGeluKernel: (a, _l, s) => ({ flops: 20 * a[4]!, bytes: a[4]! * (f32 + 2 * s.act) }),
  geluKernel: (a, _l, s) => ({ flops: 20 * a[2]!, bytes: a[2]! * 2 * s.act }),
  geluBackKernel: (a, _l, s) => ({ flops: 25 * a[3]!, bytes: a[3]! * 3 * s.act }),
  residualKernel: (a) => ({ flops: 4 * a[6]!, bytes: a[6]! * f32 * (3 + (a[2] ? 1 : 0)) }),
  // rows of V logits (fp32) read once for the log-sum-exp, once more for the gradient (written in act) when mode 1
  crossEntropyKernel: (a, l, s) => ({ flops: 5 * rows(l) * a[4]!, bytes: rows(l) * a[4]! * (a[5] === 1 ? 2 * f32 + s.act : f32) }),
  // training's, the row staged in shared memory: the logits read once, the gradient written in act
  crossEntropyRowKernel: (a, l, s) => ({ flops: 5 * rows(l) * a[4]!, bytes: rows(l) * a[4]! * (f32 + s.act) }),
  // the embedding gradient: each row of dX read once, each distinct token's row (at most min(N, V)) read and written
  embedBackKernel: (a, _l, s) => ({ flops: s.N * a[5]!, bytes: (s.N + 2 * Math.min(s.N, s.V)) * a[5]! * f32 }),
  // its stable radix sort of the ids, per 8-bit pass: every id compared by each of the 256 digit threads of its tile
  radixCountKernel: (a, l) => ({ flops: 256 * a[1]!, bytes: (a[1]! + 256 * rows(l)) * 4 }),
  exclusiveScanKernel: (a) => ({ flops: a[1]!, bytes: 2 * a[1]! * 4 }),
  radixScatterKernel: (a, l) => ({ flops: 256 * a[2]!, bytes: (4 * a[2]! + 256 * rows(l)) * 4 }),
  sumKernel: (a) => ({ flops: a[1]!, bytes: (a[1]! + 1) * 8 }),
  sumSquaresKernel: (a) => ({ flops: 2 * a[1]!, bytes: a[1]! * f32 }),
  // w, g, m, v read; w, m, v written (the next backward overwrites g); the bf16 copy of w written when a[8] (the update's own cast)
  adamwKernel: (a) => ({ flops: 15 * a[4]!, bytes: a[4]! * (7 * f32 + (a[8] ? 2 : 0)) }),
  meanHiddenKernel: (a, l, s) => ({ flops: 4 * s.N * a[8]!, bytes: s.N * a[8]! * f32 }),
  // Fused attention on mma.sync tiles (attention.cuh, CPT_CUDA_ATTENTION=mma), grid (query or key
  // blocks, B*H): its model work is that of the 64x64 tile pairs on or under the causal diagonal,
  // each a 64x64xhd product per pass: the forward's two (Q K^T, P V) in one pass over the keys,
  // dK/dV's four (S^T, dP^T, dV, dK), dQ's three (S, dP, dQ); Q, K, V, O and dO read from HBM once
  // (the repeats hit L2), outputs written once: the gradients fp32 where the kernel has fp32
  // outputs (dk, dq: argument 6), else bf16 straight into dqkv. Its time, from what it executes
  // (mmaCost).
  mmaForwardKernel: (_a, l, s) => ({ flops: 2 * flashTileFlops(l, s), bytes: l.grid[1]! * s.T * (s.hd * 4 * s.act + f32), tensor: true, ...mmaCost('mmaForwardKernel', l, s) }),
  mmaBackwardKVKernel: (a, l, s) => ({ flops: 4 * flashTileFlops(l, s), bytes: l.grid[1]! * s.T * (s.hd * (4 * s.act + 2 * (a[6] ? f32 : s.act)) + 2 * f32), tensor: true, ...mmaCost('mmaBackwardKVKernel', l, s) }),
  mmaBackwardQKernel: (a, l, s) => ({ flops: 3 * flashTileFlops(l, s), bytes: l.grid[1]! * s.T * (s.hd * (4 * s.act + (a[6] ? f32 : s.act)) + 2 * f32), tensor: true, ...mmaCost('mmaBackwardQKernel', l, s) }),
  attnRowDotKernel: (a) => ({ flops: 2 * a[3]! * a[4]!, bytes: a[3]! * (2 * a[4]! * 2 + f32) }),
};
/** One pass of a fused attention kernel: 2 * 64 * 64 * hd FLOPs per 64 x 64 tile pair on or under the causal diagonal, every head (grid[1]). */
function flashTileFlops(l: Launch, s: Shape): number {
  const blocks = Math.ceil(s.T / 64);
  return ((blocks * (blocks + 1)) / 2) * l.grid[1]! * 2 * 64 * 64 * s.hd;
}

export type MmaKernel = 'mmaForwardKernel' | 'mmaBackwardKVKernel' | 'mmaBackwardQKernel';
/**
 * attention.cuh's tiles at head dimension hd: F = kFlash, R = mmaKeys, K 16-deep steps over the
 * head dimension; the forward's FT = mmaQueryRows / 64 row tiles a warp; the backward's
 * mmaBackwardWarps, MT = mmaRowTiles, WG = mmaGroupWarps, NC = mmaGradCols / 8, mmaScoresSplit,
 * NT = mmaScoreCols / 8 (a warp's score product columns / 8).
 */
function mmaTiles(hd: number) {
  const F = 64, R = hd === 256 ? 32 : 64, K = hd / 16, FT = hd <= 64 ? 2 : 1;
  const warps = (R / 16) * (hd > 64 ? Math.floor(hd / 64) : 1), MT = hd <= 64 ? 2 : 1;
  const WG = (warps * 16 * MT) / R, NC = hd / WG / 8, split = WG > 1, NT = (split ? (2 * F) / WG : F) / 8;
  return { F, R, K, FT, warps, MT, WG, NC, split, NT };
}
/**
 * The mma.sync operations one warp executes in one pass of a kernel's main loop (one key tile in
 * the forward, one 64-block of the other side in the backward): the score products, then the
 * products that accumulate (O += P V; dV and dK, or dQ). test/cuda/sass.test.ts finds this many
 * HMMA in each loop nvcc built.
 */
export function mmaPerWarpStep(kernel: MmaKernel, hd: number): number {
  const { F, R, K, FT, MT, NC, split, NT } = mmaTiles(hd);
  if (kernel === 'mmaForwardKernel') return FT * (K * (R / 8) + (R / 16) * (hd / 8));
  return MT * (K * (split ? 1 : 2) * NT + (F / 16) * (kernel === 'mmaBackwardKVKernel' ? 2 : 1) * NC);
}
/**
 * What a kernel on mma.sync tiles (attention.cuh) executes for B*H = bh heads of T rows, counted
 * from its loops as written: mma.sync.m16n8k16 operations, bytes read by ldmatrix (512 a warp's
 * load, free of bank conflicts), and other shared-memory traffic as `stores` (the tiles it loads,
 * rows past T as zeros; P and dS; the rows' statistics; P read back by the backward's dP warps
 * where the score products are split). The simulator counts the first two and the
 * loads' wavefronts as it runs the kernels (test/cuda/sim.test.ts holds this function to its
 * counts and the wavefronts to one per 128 bytes).
 */
export function mmaWork(kernel: MmaKernel, hd: number, T: number, bh: number): { mma: number; ldmatrix: number; stores: number } {
  const { F, R, K, FT, warps, MT, NC, split, NT } = mmaTiles(hd);
  const tile = (rows: number) => rows * hd * 2, load = 512;
  let steps = 0; // a block's passes over the other side's tiles, summed over the blocks of a head
  if (kernel === 'mmaForwardKernel') {
    const QR = 64 * FT, NS = R / 8, NO = hd / 8; // mmaQueryRows; 4 warps of 16 * FT query rows
    let warpSteps = 0; // the (warp, key tile) pairs computed: a warp skips a tile none of its rows sees
    for (let q0 = 0; q0 < T; q0 += QR)
      for (let k0 = 0; k0 < Math.min(T, q0 + QR); k0 += R, steps++)
        for (let w0 = q0; w0 < q0 + QR; w0 += 16 * FT) warpSteps += w0 < T && k0 <= w0 + 16 * FT - 1 ? 1 : 0;
    const w = warpSteps * bh; // per key tile S = Q K^T, then O += P V
    return { mma: w * mmaPerWarpStep(kernel, hd), ldmatrix: w * load * (K * (FT + NS / 2) + ((R / 16) * NO) / 2), stores: bh * (Math.ceil(T / QR) * tile(QR) + steps * 2 * tile(R)) };
  }
  const products = split ? 1 : 2; // a warp's score products
  const kv = kernel === 'mmaBackwardKVKernel';
  for (let b0 = 0; b0 < T; b0 += R) steps += kv ? Math.ceil((T - Math.floor(b0 / F) * F) / F) : Math.ceil(Math.min(T, b0 + R) / F);
  const w = steps * warps * bh; // per pass: the score products (S, dP), then dV and dK (kv) or dQ
  const mma = w * mmaPerWarpStep(kernel, hd);
  const ldmatrix = w * load * (K * products * (MT + NT / 2) + (kv ? 4 * 2 : 4) * (MT + NC / 2));
  const pds = (kv || split ? 2 : 1) + (split ? 1 : 0); // P and dS tiles stored (dQ unsplit: dS only), P read back when split
  const stores = bh * (Math.ceil(T / R) * 2 * tile(R) + steps * (2 * tile(F) + pds * R * F * 2 + (kv ? 2 * F * 4 : 0)));
  return { mma, ldmatrix, stores };
}
const mmaCost = (kernel: MmaKernel, l: Launch, s: Shape) => {
  const w = mmaWork(kernel, s.hd, s.T, l.grid[1]!);
  const perMma = s.issuePerMma?.[`${kernel}<${s.hd}>`];
  return { mma: w.mma, smem: w.ldmatrix + w.stores, ...(perMma ? { issue: w.mma * perMma } : {}) };
};

/** A launch's kernel as COST names it: (splitHeadsKernel<float, T>) -> splitHeadsKernel. */
export const kernelName = (launched: string) => launched.replace(/^\(|<.*$/g, '');

/** bound: what the roofline put first for most of the time: tensor (or fp32) work, HBM, shared memory, or instruction issue. */
export interface Line { what: string; launches: number; flops: number; bytes: number; seconds: number; bound: 'compute' | 'HBM' | 'shared memory' | 'issue' }

/** The trace costed on `gpu`: one line per kernel (products split into batched attention and the rest), and the host copies. */
export function costTrace(events: Event[], s: Shape, gpu: Gpu, eff: Efficiency = IDEAL): Line[] {
  const hbm = gpu.hbm * eff.hbm;
  const by = new Map<string, Line & { terms: number[] }>();
  // seconds: the launch's overhead on top of the longest of its compute, HBM, shared-memory and issue times
  const add = (what: string, flops: number, bytes: number, [compute, memory, shared = 0, issue = 0]: number[], overhead: number) => {
    const l = by.get(what) ?? { what, launches: 0, flops: 0, bytes: 0, seconds: 0, bound: 'compute', terms: [0, 0, 0, 0] };
    l.launches++, (l.flops += flops), (l.bytes += bytes), (l.seconds += Math.max(compute!, memory!, shared, issue) + overhead);
    [compute!, memory!, shared, issue].forEach((t, i) => (l.terms[i]! += t));
    by.set(what, l);
  };
  for (const e of events) {
    if ('gemm' in e) {
      const flops = 2 * e.m * e.n * e.k * e.batch;
      const bytes = e.batch * (e.m * e.k * e.bytesA + e.k * e.n * e.bytesB + e.m * e.n * (e.bytesC + e.bytesD));
      const peak = (e.bytesA === 2 && e.bytesB === 2 ? gpu.bf16 : gpu.fp32) * eff.tensor;
      add(e.batch > 1 ? 'cuBLASLt: attention products (batched over heads)' : 'cuBLASLt: linear layers and LM head', flops, bytes, [flops / peak, bytes / hbm], LAUNCH_S);
    } else if ('copy' in e) {
      if (e.copy === 'd2d') add('copies on the device', 0, 2 * e.bytes, [0, (2 * e.bytes) / hbm], LAUNCH_S);
      else if (e.async) add(`host copies (${e.copy}, asynchronous)`, 0, e.bytes, [0, e.bytes / gpu.pcie], LAUNCH_S);
      else add(`host copies (${e.copy}, each a synchronisation)`, 0, e.bytes, [0, e.bytes / gpu.pcie], SYNC_S);
    } else if ('memset' in e) {
      add('memsets', 0, e.memset, [0, e.memset / hbm], LAUNCH_S);
    } else if ('counted' in e) {
      continue; // what a run's kernels did (the simulator's counts), not work of its own
    } else {
      const name = kernelName(e.kernel);
      const c = COST[name];
      if (!c) throw new Error(`model-cuda: no cost declared for kernel ${name} (add it to COST)`);
      const { flops, bytes, tensor, mma, smem, issue } = c(e.args.map((x) => x ?? NaN), e, s);
      const compute = mma !== undefined ? (mma * MMA_FLOPS) / (gpu.bf16 * MMA_SYNC * eff.tensor) : flops / (tensor ? gpu.bf16 * eff.tensor : gpu.fp32);
      add(name, flops, bytes, [compute, bytes / hbm, (smem ?? 0) / (smemBandwidth(gpu) * eff.smem), (issue ?? 0) / (issueRate(gpu) * eff.issue)], LAUNCH_S);
    }
  }
  const bounds = ['compute', 'HBM', 'shared memory', 'issue'] as const;
  return [...by.values()]
    .map(({ terms, ...l }) => ({ ...l, bound: bounds[terms.indexOf(Math.max(...terms))]! }))
    .sort((a, b) => b.seconds - a.seconds);
}

/**
 * Trace a training step + AdamW of `c` at [batch, seq] (bf16, the second of two) on the simulator,
 * in plan mode: 'unfused' is the default engine (attention as cuBLASLt products and softmax
 * kernels; biases, residual sums and bias gradients in cuBLASLt's epilogues); 'mma' adds the
 * opt-in fused attention on mma.sync tiles, forward and backward (CPT_CUDA_ATTENTION=mma,
 * attention.cuh). epilogues: false traces the
 * engine with CPT_CUDA_EPILOGUES=0 (those sums by kernels).
 */
export function traceStep(c: NeoXConfig, batch: number, seq: number, variant: 'unfused' | 'mma', { epilogues = true } = {}): Event[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-model-cuda-'));
  const env = { CPT_CUDA_ATTENTION: variant, CPT_CUDA_EPILOGUES: epilogues ? '1' : '0' };
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const file = path.join(dir, 'trace.jsonl');
    cudaPeakBytes(c, { precision: 'bf16', recompute: false, microBatch: batch, seqLen: seq }, file);
    return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Event);
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export function shapeOf(c: NeoXConfig, batch: number, seq: number, issuePerMma?: Record<string, number>): Shape {
  const d = derive(c);
  return { act: 2, N: batch * seq, D: c.hidden_size, I: c.intermediate_size, V: c.vocab_size, H: c.num_attention_heads, hd: d.headDim, T: seq, B: batch, ...(issuePerMma ? { issuePerMma } : {}) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { models: { type: 'string', default: 'pythia-160m,pythia-410m,pythia-1b' }, batch: { type: 'string', default: '4' }, seq: { type: 'string', default: '2048' }, json: { type: 'boolean', default: false } } });
  const B = Number(values.batch), T = Number(values.seq);
  const out: Record<string, unknown>[] = [];
  const sass = issuePerMma(), issue = 'perMma' in sass ? sass.perMma : undefined;
  const shape = (c: NeoXConfig) => shapeOf(c, B, T, issue);
  console.log(`MODELLED, not measured: the CUDA engine (bf16), one training step + AdamW of [${B}, ${T}] traced on the simulator, before (the default engine: attention unfused) and after (the attention on mma.sync tiles, CPT_CUDA_ATTENTION=mma);`);
  console.log(`roofline per launch (dense bf16 ${GPUS[0]!.bf16 / 1e12} TFLOP/s for bf16 products, fp32 ${GPUS[0]!.fp32 / 1e12} otherwise; the attention's mma.sync at ${(MMA_SYNC * 100).toFixed(0)}% of the bf16 peak, its shared memory at ${SMEM_BYTES_PER_CLOCK} bytes a clock per multiprocessor, ${(smemBandwidth(GPUS[0]!) / 1e12).toFixed(1)} TB/s) + ${LAUNCH_S * 1e6} µs per launch, host copies at ${GPUS[0]!.pcie / 1e9} GB/s + ${SYNC_S * 1e6} µs;`);
  console.log('perMma' in sass
    ? `the attention's instruction issue at ${ISSUE_PER_CLOCK} warp instructions a clock per multiprocessor, from its loops' machine code (native/build-cuda, sm_90; npm run sass:cuda: static, every branch counted once, so an upper bound).`
    : `the attention's instruction issue not costed: ${sass.missing}.`);
  for (const m of values.models.split(',')) {
    const c = presetConfig(m);
    const before = traceStep(c, B, T, 'unfused'), events = traceStep(c, B, T, 'mma');
    const model = trainFlopsPerToken(c, T) * B * T; // as cpt inspect counts it
    const total = (ev: Event[], gpu: Gpu, eff: Efficiency) => costTrace(ev, shape(c), gpu, eff).reduce((a, l) => a + l.seconds, 0);
    for (const gpu of GPUS) {
      const lines = costTrace(events, shape(c), gpu);
      const step = lines.reduce((a, l) => a + l.seconds, 0);
      const mfu = model / step / gpu.bf16;
      const derated = total(events, gpu, DERATED);
      const [b0, b1] = [total(before, gpu, IDEAL), total(before, gpu, DERATED)];
      console.log(`\n${m} on ${gpu.name} (${gpu.hbm / 1e12} TB/s), ${(model / 1e12).toFixed(1)} TFLOP of model work, ${events.length} launches/products/copies:`);
      console.log(`  before (unfused attention): ideal ${(b0 * 1e3).toFixed(1)} ms, MFU ${((model / b0 / gpu.bf16) * 100).toFixed(1)}%; derated ${(b1 * 1e3).toFixed(1)} ms, MFU ${((model / b1 / gpu.bf16) * 100).toFixed(1)}%`);
      console.log(`  after: ideal roofline: step ${(step * 1e3).toFixed(1)} ms, MFU ${(mfu * 100).toFixed(1)}%, ${Math.round((B * T) / step).toLocaleString('en-US')} tokens/s; derated (products at ${DERATED.tensor * 100}% of peak, kernels at ${DERATED.hbm * 100}% of HBM, shared memory at ${DERATED.smem * 100}%, issue at ${DERATED.issue * 100}%): ${(derated * 1e3).toFixed(1)} ms, MFU ${((model / derated / gpu.bf16) * 100).toFixed(1)}%`);
      console.log('  after, ideal, by kernel:  share       ms  launches  GB moved   TFLOP  bound          what');
      for (const l of lines.filter((x) => x.seconds / step >= 0.005)) {
        console.log(`  ${((100 * l.seconds) / step).toFixed(1).padStart(5)}%  ${(l.seconds * 1e3).toFixed(2).padStart(7)}  ${String(l.launches).padStart(8)}  ${(l.bytes / 1e9).toFixed(2).padStart(8)}  ${(l.flops / 1e12).toFixed(2).padStart(6)}  ${l.bound.padEnd(13)}  ${l.what}`);
      }
      out.push({ model: m, gpu: gpu.name, batch: B, seq: T, step_ms: step * 1e3, mfu, derated_step_ms: derated * 1e3, derated_mfu: model / derated / gpu.bf16, before_step_ms: b0 * 1e3, before_derated_step_ms: b1 * 1e3, tokens_per_s: (B * T) / step, lines });
    }
  }
  if (values.json) console.log(JSON.stringify(out));
}
