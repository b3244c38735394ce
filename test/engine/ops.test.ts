// The engine operation table (native/src/ops.h) is the one declaration of a batch operation: the
// TypeScript interface is generated from it, and the addon, the CUDA library and the tfjs engine
// each have exactly its operations.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPS_TS, opsTs, parseOps } from '../../scripts/engine-ops.js';
import { ENGINE_OPS } from '../../src/engine/ops.js';
import { CUDA_GPU_LIB_PATH, CUDA_SIM_LIB_PATH, createNativeEngine, nativeStatus } from '../../src/engine/native/index.js';
import { createTfjsEngine } from '../../src/engine/tfjs/index.js';
import { presetConfig } from '../../src/model/presets.js';

describe('engine operation table', () => {
  it('src/engine/ops.ts is what native/src/ops.h generates (else: npm run engine:ops)', () => {
    expect(readFileSync(OPS_TS, 'utf8')).toBe(opsTs());
    const ops = parseOps();
    expect(ops.map((o) => o.method)).toEqual([...ENGINE_OPS]);
    expect(ops.find((o) => o.method === 'meanHidden')).toMatchObject({ cName: 'mean_hidden', result: 'OUT', params: [{ name: 'lengths', type: 'Int32Array', optional: false }] });
    expect(ops.find((o) => o.method === 'trainStep')?.params).toEqual([{ name: 'gradScale', type: 'number', optional: true }]);
  });

  it('a parameter type the binding cannot take is refused with the entry named', () => {
    const text = readFileSync(new URL('../../native/src/ops.h', import.meta.url), 'utf8').replace('(, double gradScale)', '(, float* gradScale)');
    expect(() => parseOps(text)).toThrow(/trainStep: parameter type of "float\* gradScale" has no TypeScript type/);
  });

  it.runIf(nativeStatus().ok)('the addon has every operation, computed by the table-generated method', () => {
    const c = { ...presetConfig('pythia-14m'), vocab_size: 64, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, num_hidden_layers: 1 };
    const e = createNativeEngine(c, { threads: 1 });
    const ids = Int32Array.from({ length: 8 }, (_, i) => (i * 7) % 64);
    expect(e.logits(ids, 2, 4)).toHaveLength(2 * 4 * 64);
    expect(e.tokenLogprobs(ids, 2, 4)).toHaveLength(2 * 3);
    expect(e.meanHidden(ids, 2, 4, Int32Array.of(4, 2))).toHaveLength(2 * 32);
    expect(() => e.meanHidden(ids, 2, 4, Int32Array.of(4))).toThrow(/one entry per row/);
    // gradScale defaults to 1: the same loss and gradients as passing it
    const l0 = e.evalLoss(ids, 2, 4);
    expect(e.trainStep(ids, 2, 4)).toBeCloseTo(l0, 5);
    const g1 = e.exportGrads().get('gpt_neox.final_layer_norm.weight')!.slice();
    e.zeroGrads();
    e.trainStep(ids, 2, 4, 1);
    expect(e.exportGrads().get('gpt_neox.final_layer_norm.weight')).toEqual(g1);
    expect(() => e.evalLoss(ids, 3, 4)).toThrow(/ids length 8 != batch \* seq = 12/);
    e.dispose();
  });

  it('the tfjs engine implements every operation', async () => {
    const e = await createTfjsEngine({ ...presetConfig('pythia-14m'), vocab_size: 64, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, num_hidden_layers: 1 });
    for (const op of ENGINE_OPS) expect(typeof e[op], op).toBe('function');
    e.dispose();
  });

  it('the CUDA libraries export cpt_cuda_<c_name> for every operation', () => {
    const libs = [CUDA_SIM_LIB_PATH, CUDA_GPU_LIB_PATH].filter((l) => existsSync(l));
    expect(libs.length).toBeGreaterThan(0);
    for (const lib of libs) {
      const syms = execFileSync('nm', ['-D', '--defined-only', lib], { encoding: 'utf8' });
      for (const o of parseOps()) expect(syms, `${lib}: cpt_cuda_${o.cName}`).toMatch(new RegExp(`\\bT cpt_cuda_${o.cName}$`, 'm'));
    }
  });
});
