// The attention kernels as nvcc built them (native/build-cuda, sm_90 SASS read by cuobjdump): each
// main loop holds the mma.sync operations the performance model counts for one pass of a warp,
// and no expf (its range reduction) where the design takes ex2. Needs the CUDA build and NVIDIA's
// cuobjdump and nvdisasm wheels (native/cuda/requirements-build.txt; .ci/run installs them).
import { describe, expect, it } from 'vitest';
import { mmaPerWarpStep, type MmaKernel } from '../../scripts/model-cuda.js';
import { attentionLoops, CUDA_LIB, sassReady } from '../../scripts/sass-cuda.js';

const ready = sassReady(), tools = 'tools' in ready ? ready.tools : undefined;
if ('missing' in ready) console.log(`test/cuda/sass.test.ts skipped: ${ready.missing}`);

describe.skipIf(!tools)('the attention kernels\' machine code (SASS, sm_90)', () => {
  it('each main loop issues the mma.sync operations the model counts for a warp\'s pass, and takes exponentials by ex2 (no expf range reduction)', () => {
    const loops = attentionLoops(CUDA_LIB, 'sm_90', tools!);
    const hds = [32, 64, 80, 128, 256];
    // the forward at each head dimension, both backward kernels at each with one or more rotary variants
    for (const k of ['mmaForwardKernel', 'mmaBackwardKVKernel', 'mmaBackwardQKernel']) expect(hds.every((hd) => loops.some((l) => l.kernel.startsWith(`${k}<${hd}`))), k).toBe(true);
    for (const l of loops) {
      const [, kernel, hd] = /^(\w+)<(\d+)/.exec(l.kernel)!;
      expect(l.hmma, l.kernel).toBe(mmaPerWarpStep(kernel as MmaKernel, Number(hd)));
      expect(l.expRangeReduction, l.kernel).toBe(0);
      expect(l.mufu, l.kernel).toBeGreaterThan(0); // the exponentials are in the loop, on the special-function unit
    }
  }, 120_000);
});
