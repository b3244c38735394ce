// The CUDA performance model (scripts/model-cuda.ts): the simulator's trace of one training step
// is complete (every kernel it launches has a declared cost), and what it records is the engine's
// real work: the linear layers' products come to 6 FLOPs per weight per token, the trace's count
// of launches is the engine's, and the model's figures follow from the roofline.
import { describe, expect, it } from 'vitest';
import { costTrace, GPUS, IDEAL, DERATED, ISSUE_PER_CLOCK, LAUNCH_S, mmaWork, shapeOf, SM_FLOPS_PER_CLOCK, SMEM_BYTES_PER_CLOCK, traceStep } from '../../scripts/model-cuda.js';
import { trainFlopsPerToken } from '../../src/model/config.js';
import { presetConfig } from '../../src/model/presets.js';
import { simMissing } from './sim.js';

describe('CUDA performance model', () => {
  it('traces a training step whose products are the model\'s matmuls, every kernel costed', () => {
    expect(simMissing()).toBeUndefined();
    const c = { ...presetConfig('pythia-70m'), num_hidden_layers: 2 };
    const B = 2, T = 256;
    const events = traceStep(c, B, T, 'unfused'); // attention's products are cuBLASLt's
    const lines = costTrace(events, shapeOf(c, B, T), GPUS[0]!); // throws on a kernel without a cost
    const linear = lines.find((l) => l.what.startsWith('cuBLASLt: linear'))!;
    // 6 FLOPs per token for each weight of the linear layers and the LM head (biases and norms are not products)
    const D = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers;
    const weights = L * (3 * D * D + D * D + 2 * D * I) + c.vocab_size * D;
    expect(linear.flops / (6 * weights * B * T)).toBeCloseTo(1, 6);
    // everything the model counts as work is in the trace: linear products plus attention products
    const attention = lines.find((l) => l.what.startsWith('cuBLASLt: attention'))!;
    expect((linear.flops + attention.flops) / (trainFlopsPerToken(c, T) * B * T)).toBeGreaterThan(0.95);
    // training's cross-entropy with its row in shared memory at Pythia's vocabulary
    expect(lines.map((l) => l.what)).toEqual(expect.arrayContaining(['adamwKernel', 'softmaxKernel', 'softmaxBackKernel', 'layerNormKernel', 'crossEntropyRowKernel']));
    // the host waits twice a step, for the loss and for the gradient norm (8 bytes each); the ids go up asynchronously
    const copies = events.filter((e) => 'copy' in e);
    expect(copies.filter((e) => e.copy === 'd2h')).toEqual([{ copy: 'd2h', bytes: 8 }, { copy: 'd2h', bytes: 8 }]);
    expect(copies.filter((e) => e.copy === 'h2d' && e.bytes === B * T * 4)).toEqual([{ copy: 'h2d', bytes: B * T * 4, async: 1 }]);
    // the roofline: never under a launch's overhead, and derating only slows it
    const step = lines.reduce((a, l) => a + l.seconds, 0);
    expect(step).toBeGreaterThan(events.length * LAUNCH_S);
    const derated = costTrace(events, shapeOf(c, B, T), GPUS[0]!, DERATED).reduce((a, l) => a + l.seconds, 0);
    expect(derated).toBeGreaterThan(step);
    expect(costTrace(events, shapeOf(c, B, T), GPUS[1]!, IDEAL).reduce((a, l) => a + l.seconds, 0)).toBeLessThan(step); // H200's faster HBM
  }, 120_000);

  it('adds biases, residual sums and bias gradients in the products\' epilogues (the default; CPT_CUDA_EPILOGUES=0: by kernels)', () => {
    const c = { ...presetConfig('pythia-70m'), num_hidden_layers: 2 };
    const B = 2, T = 256;
    const kernels = costTrace(traceStep(c, B, T, 'unfused', { epilogues: false }), shapeOf(c, B, T), GPUS[0]!);
    const events = traceStep(c, B, T, 'unfused');
    const fused = costTrace(events, shapeOf(c, B, T), GPUS[0]!);
    const names = fused.map((l) => l.what);
    // the four linear layers' weight-gradient products of each layer sum their bias gradients; no column-sum kernels
    expect(events.filter((e) => 'gemm' in e && e.bgrad === 1)).toHaveLength(4 * c.num_hidden_layers);
    expect(names).not.toContain('colSumPartialsKernel');
    expect(kernels.map((l) => l.what)).toContain('colSumPartialsKernel');
    // the query/key/value and up-projection products add their bias and write bf16; the two output projections add
    // theirs and the residual stream (fp32, read as C): no residual kernel
    expect(events.filter((e) => 'gemm' in e && e.bias === 1 && e.bytesD === 2)).toHaveLength(2 * c.num_hidden_layers);
    expect(events.filter((e) => 'gemm' in e && e.bias === 1 && e.bytesD === 4 && e.bytesC === 4)).toHaveLength(2 * c.num_hidden_layers);
    expect(names).toContain('geluKernel');
    expect(names).not.toContain('biasGeluKernel');
    expect(names).not.toContain('residualKernel');
    // the pre-activations [N, I] and [N, 3D] go through HBM once in bf16 instead of in fp32 and again in bf16: the products
    // write 2 bytes an element fewer; GELU reads 4 fewer (it no longer writes h1), splitting the heads 2 fewer. The output
    // projections read the residual stream, [N, D] in fp32 each
    const N = B * T, D = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers;
    expect(moved(kernels, /^cuBLASLt: linear/) - moved(fused, /^cuBLASLt: linear/)).toBe(L * (2 * (N * I + N * 3 * D) - 2 * 4 * N * D));
    expect(moved(kernels, /^(biasGelu|gelu|splitHeads)Kernel$/) - moved(fused, /^(biasGelu|gelu|splitHeads)Kernel$/)).toBe(L * (4 * N * I + 2 * N * 3 * D));
  }, 120_000);

  it('runs the attention on mma.sync tiles with CPT_CUDA_ATTENTION=mma: forward and backward fused, no score products, softmax kernels or merges of the heads and their gradients', () => {
    const c = { ...presetConfig('pythia-70m'), num_hidden_layers: 2 };
    const B = 2, T = 256;
    const unfused = costTrace(traceStep(c, B, T, 'unfused'), shapeOf(c, B, T), GPUS[0]!);
    const mma = costTrace(traceStep(c, B, T, 'mma'), shapeOf(c, B, T), GPUS[0]!);
    const names = mma.map((l) => l.what);
    expect(names).toEqual(expect.arrayContaining(['mmaForwardKernel', 'mmaBackwardKVKernel', 'mmaBackwardQKernel', 'attnRowDotKernel']));
    // no score products or softmax kernels: the attention FLOPs on tensor cores, in the kernels
    expect(names.filter((n) => /softmax|attention products/.test(n))).toEqual([]);
    // it writes its output and reads that output's gradient in rows [N, D], as the output projection does, and (the rotary
    // half being 8 here) writes the query/key/value gradient itself, rotary undone: no copies between the heads layout and
    // rows but the split into heads (with rotary) before it
    for (const k of ['mergeHeadsKernel', 'splitGradKernel', 'mergeHeadsGradKernel']) expect(names).not.toContain(k);
    expect(unfused.map((l) => l.what)).toEqual(expect.arrayContaining(['mergeHeadsKernel', 'splitGradKernel', 'mergeHeadsGradKernel']));
    // 9 passes (forward 2: one pass over the keys; dK/dV 4, dQ 3) over the 10 of 16 64x64 tiles on
    // or under the diagonal, against the unfused path's 7 products over the whole 256x256 square
    const fused = mma.filter((l) => l.what.startsWith('mma')).reduce((a, l) => a + l.flops, 0);
    const products = unfused.find((l) => l.what.startsWith('cuBLASLt: attention'))!.flops;
    expect(fused / products).toBeCloseTo((9 * 10) / 16 / 7, 9);
    expect(moved(mma, /^(mma|attnRowDot)/)).toBeLessThan(moved(unfused, /softmax|attention products/) / 4);
    // each kernel costed at the slowest of mma.sync (its operations at 2/3 of the tensor peak), shared memory (ldmatrix and
    // the tiles' stores at 128 bytes a clock per multiprocessor) and HBM: at T = 2048 shared memory, a warp's rows (32 at
    // this head dimension) sharing each fragment it loads
    const trace = traceStep(c, 1, 2048, 'mma'), long = costTrace(trace, shapeOf(c, 1, 2048), GPUS[0]!);
    for (const k of ['mmaForwardKernel', 'mmaBackwardKVKernel', 'mmaBackwardQKernel'] as const) {
      const line = long.find((l) => l.what === k)!, w = mmaWork(k, 64, 2048, c.num_attention_heads);
      const perLaunch = (w.ldmatrix + w.stores) / ((GPUS[0]!.bf16 / SM_FLOPS_PER_CLOCK) * SMEM_BYTES_PER_CLOCK);
      expect(line.bound).toBe('shared memory');
      expect(line.seconds / (line.launches * (perLaunch + LAUNCH_S))).toBeCloseTo(1, 12);
    }
    // given the warp instructions a loop issues per mma.sync (scripts/sass-cuda.ts reads them from the machine code), instruction
    // issue too, at 4 a clock per multiprocessor; a kernel the map lacks is not costed for it
    const issued = costTrace(trace, shapeOf(c, 1, 2048, { 'mmaForwardKernel<64>': 20 }), GPUS[0]!);
    const fwd = issued.find((l) => l.what === 'mmaForwardKernel')!, w = mmaWork('mmaForwardKernel', 64, 2048, c.num_attention_heads);
    expect(fwd.bound).toBe('issue');
    expect(fwd.seconds / (fwd.launches * ((w.mma * 20) / ((GPUS[0]!.bf16 / SM_FLOPS_PER_CLOCK) * ISSUE_PER_CLOCK) + LAUNCH_S))).toBeCloseTo(1, 12);
    expect(issued.find((l) => l.what === 'mmaBackwardKVKernel')!.bound).toBe('shared memory');
  }, 120_000);
});

const moved = (ls: ReturnType<typeof costTrace>, re: RegExp) => ls.filter((l) => re.test(l.what)).reduce((a, l) => a + l.bytes, 0);
