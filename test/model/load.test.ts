import { describe, it, expect } from 'vitest';
import { mkdtempSync, copyFileSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadModel, saveModel } from '../../src/model/load.js';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors.js';
import { paramCount, paramSpecs } from '../../src/model/config.js';
import { presetConfig } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/init.js';
import { UserError } from '../../src/util/errors.js';
import { loadGolden, goldenDir } from '../helpers/golden.js';

/** Bit-identical float arrays. */
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const tmp = () => mkdtempSync(path.join(tmpdir(), 'cpt-load-'));

/** A copy of the golden model directory whose weights file is rewritten by `edit`. */
function editedGolden(edit: (t: Map<string, TensorToWrite>) => void): string {
  const g = loadGolden(), dir = tmp();
  copyFileSync(path.join(goldenDir(), 'config.json'), path.join(dir, 'config.json'));
  const t = new Map<string, TensorToWrite>([...g.weights].map(([n, d]) => [n, { dtype: 'F32', shape: paramSpecs(g.config).find((s) => s.name === n)!.shape, data: d }]));
  edit(t);
  writeSafetensors(path.join(dir, 'model.safetensors'), t);
  return dir;
}

async function userError(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { expect(e).toBeInstanceOf(UserError); return (e as Error).message; }
  throw new Error('expected a UserError');
}

describe('loadModel / saveModel', () => {
  it('loads an HF directory: every parameter, in paramSpecs order', async () => {
    const g = loadGolden();
    const m = await loadModel(goldenDir());
    expect(m.config).toEqual(g.config);
    expect([...m.weights.keys()]).toEqual(paramSpecs(g.config).map((s) => s.name));
    for (const [n, w] of g.weights) expect(same(m.weights.get(n)!, w), n).toBe(true);
    expect(m.source).toBe(path.resolve(goldenDir()));
  });

  it('ignores the HF attention buffers (bias, masked_bias, rotary inv_freq)', async () => {
    const dir = editedGolden((t) => {
      t.set('gpt_neox.layers.0.attention.bias', { dtype: 'F32', shape: [1, 1, 4, 4], data: new Float32Array(16) });
      t.set('gpt_neox.layers.0.attention.masked_bias', { dtype: 'F32', shape: [], data: new Float32Array(1) });
      t.set('gpt_neox.layers.1.attention.rotary_emb.inv_freq', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    });
    expect((await loadModel(dir)).weights.size).toBe(28);
  });

  it('a missing tensor is a UserError naming it and its expected shape', async () => {
    const dir = editedGolden((t) => t.delete('gpt_neox.layers.1.mlp.dense_4h_to_h.weight'));
    expect(await userError(loadModel(dir))).toMatch(/missing tensor "gpt_neox.layers.1.mlp.dense_4h_to_h.weight" \(expected shape \[64,256\]\)/);
  });

  it('a mis-shaped tensor is a UserError with expected and found shapes', async () => {
    const dir = editedGolden((t) => t.set('embed_out.weight', { dtype: 'F32', shape: [1024, 32], data: new Float32Array(1024 * 32) }));
    expect(await userError(loadModel(dir))).toMatch(/tensor "embed_out.weight" has shape \[1024,32\], expected \[1024,64\]/);
  });

  it('an unexpected tensor is a UserError (a different architecture, not silently dropped)', async () => {
    const dir = editedGolden((t) => t.set('gpt_neox.layers.0.attention.q_proj.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }));
    expect(await userError(loadModel(dir))).toMatch(/unexpected tensor "gpt_neox.layers.0.attention.q_proj.weight"/);
  });

  it('a bad config or an unknown name is a UserError', async () => {
    const dir = editedGolden(() => {});
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ hidden_size: 64 }));
    expect(await userError(loadModel(dir))).toMatch(/config.json: .*missing key "num_hidden_layers"/s);
    expect(await userError(loadModel('pythia-7b'))).toMatch(/neither a directory nor a Pythia preset.*pythia-6.9b/);
  });

  it('round trip: load → save → load gives identical tensors with HF names, dtype and metadata', async () => {
    const m = await loadModel(goldenDir());
    const dir = tmp(), tok = path.join(tmp(), 'tokenizer.json');
    writeFileSync(tok, '{"model":{}}');
    await saveModel(dir, m.config, m.weights, { tokenizer: tok });
    expect(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).toBe('{"model":{}}');
    const r = openSafetensors(path.join(dir, 'model.safetensors'));
    expect(r.metadata.format).toBe('pt');
    expect([...r.tensors.values()].map((t) => [t.name, t.dtype, t.shape])).toEqual(paramSpecs(m.config).map((s) => [s.name, 'F32', s.shape]));
    r.close();
    const back = await loadModel(dir);
    expect(back.config).toEqual(m.config);
    for (const [n, w] of m.weights) expect(same(back.weights.get(n)!, w), n).toBe(true);
  });

  it('saves bfloat16 (torch_dtype bfloat16, BF16 tensors) and reads it back within bf16 rounding', async () => {
    const m = await loadModel(goldenDir());
    const dir = tmp();
    await saveModel(dir, m.config, m.weights, { dtype: 'bfloat16' });
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const r = openSafetensors(dir);
    expect([...r.tensors.values()].every((t) => t.dtype === 'BF16')).toBe(true);
    r.close();
    const back = await loadModel(dir);
    for (const [n, w] of m.weights) {
      const b = back.weights.get(n)!;
      let bad = 0, changed = 0;
      for (let i = 0; i < w.length; i++) {
        if (!(Math.abs(b[i] - w[i]) <= Math.abs(w[i]) * 2 ** -8)) bad++;
        if (b[i] !== w[i]) changed++;
      }
      expect(bad, n).toBe(0);
      expect(changed, n).toBeGreaterThan(0); // really stored at lower precision
    }
    expect(existsSync(path.join(dir, 'tokenizer.json'))).toBe(false);
  });
});

describe('Pythia presets', () => {
  // Published sizes of the Pythia suite (EleutherAI), in parameters.
  const PUBLISHED: [string, number][] = [
    ['pythia-14m', 14_067_712], ['pythia-31m', 30_494_720], ['pythia-70m', 70_426_624], ['pythia-160m', 162_322_944],
    ['pythia-410m', 405_334_016], ['pythia-1b', 1_011_781_632], ['pythia-1.4b', 1_414_647_808], ['pythia-2.8b', 2_775_208_960],
    ['pythia-6.9b', 6_857_302_016], ['pythia-12b', 11_846_072_320],
  ];
  for (const [name, n] of PUBLISHED) it(`${name} has ${n.toLocaleString('en')} parameters`, () => expect(paramCount(presetConfig(name))).toBe(n));

  it('fresh initialisation: small_init / wang_init scales, zero biases, unit norms, seeded and deterministic', async () => {
    const m = await loadModel('pythia-14m', { seed: 3 });
    expect(m.source).toBe('preset pythia-14m (seed 3)');
    const c = m.config, d = c.hidden_size;
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    const mean = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / a.length;
    const smallInit = Math.sqrt(2 / (5 * d)), wang = 2 / (c.num_hidden_layers * Math.sqrt(d));
    expect(std(m.weights.get('gpt_neox.embed_in.weight')!) / smallInit).toBeCloseTo(1, 2);
    expect(std(m.weights.get('embed_out.weight')!) / smallInit).toBeCloseTo(1, 2);
    expect(std(m.weights.get('gpt_neox.layers.0.attention.query_key_value.weight')!) / smallInit).toBeCloseTo(1, 1);
    expect(std(m.weights.get('gpt_neox.layers.2.attention.dense.weight')!) / wang).toBeCloseTo(1, 1);
    expect(std(m.weights.get('gpt_neox.layers.5.mlp.dense_4h_to_h.weight')!) / wang).toBeCloseTo(1, 1);
    expect(Math.abs(mean(m.weights.get('gpt_neox.embed_in.weight')!))).toBeLessThan(1e-3);
    expect(m.weights.get('gpt_neox.layers.1.mlp.dense_h_to_4h.bias')!.every((x) => x === 0)).toBe(true);
    expect(m.weights.get('gpt_neox.layers.1.input_layernorm.weight')!.every((x) => x === 1)).toBe(true);
    expect(m.weights.get('gpt_neox.final_layer_norm.bias')!.every((x) => x === 0)).toBe(true);
    // Per-tensor streams: a smaller vocabulary leaves the layer tensors unchanged.
    const small = { ...c, vocab_size: 64 };
    const again = initWeights(small, 3), other = initWeights(small, 4);
    expect(again.get('gpt_neox.layers.3.attention.dense.weight')).toEqual(m.weights.get('gpt_neox.layers.3.attention.dense.weight'));
    expect(other.get('gpt_neox.layers.3.attention.dense.weight')![0]).not.toBe(m.weights.get('gpt_neox.layers.3.attention.dense.weight')![0]);
  });
});
