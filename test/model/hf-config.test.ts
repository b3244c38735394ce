import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readHFConfig, writeHFConfig } from '../../src/model/hf-config.js';
import { presetConfig } from '../../src/model/presets.js';
import { UserError } from '../../src/util/errors.js';
import { goldenDir } from '../helpers/golden.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'cpt-cfg-'));
function withConfig(obj: unknown): string {
  const dir = tmp();
  writeFileSync(path.join(dir, 'config.json'), typeof obj === 'string' ? obj : JSON.stringify(obj));
  return dir;
}
const golden = () => JSON.parse(readFileSync(path.join(goldenDir(), 'config.json'), 'utf8')) as Record<string, unknown>;

describe('HF config.json', () => {
  it('reads the golden config', () => {
    const c = readHFConfig(goldenDir());
    expect(c).toMatchObject({ hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 1024, rotary_pct: 0.25, use_parallel_residual: true, hidden_act: 'gelu' });
  });

  it('writes a full HF config that reads back identically', async () => {
    const dir = tmp();
    const cfg = presetConfig('pythia-160m');
    await writeHFConfig(dir, cfg, 'bfloat16');
    const raw = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(raw).toMatchObject({ architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox', torch_dtype: 'bfloat16', hidden_size: 768 });
    expect(readHFConfig(dir)).toEqual(cfg);
  });

  it('fills HF defaults and accepts rope_theta for the rotary base', () => {
    const g = golden();
    delete g.rotary_emb_base; delete g.use_parallel_residual; delete g.layer_norm_eps;
    g.rope_theta = 500;
    expect(readHFConfig(withConfig(g))).toMatchObject({ rotary_emb_base: 500, use_parallel_residual: true, layer_norm_eps: 1e-5 });
  });

  it('names the file and every bad key', () => {
    const g = golden();
    delete g.hidden_size;
    g.num_hidden_layers = '2';
    g.use_parallel_residual = 'yes';
    const dir = withConfig(g);
    let msg = '';
    try { readHFConfig(dir); } catch (e) { expect(e).toBeInstanceOf(UserError); msg = (e as Error).message; }
    expect(msg).toContain(path.join(dir, 'config.json'));
    expect(msg).toMatch(/3 problems/);
    expect(msg).toMatch(/missing key "hidden_size" \(a positive integer\)/);
    expect(msg).toMatch(/key "num_hidden_layers" is "2", expected a positive integer/);
    expect(msg).toMatch(/key "use_parallel_residual" is "yes", expected true or false/);
  });

  it('rejects unsupported architectures and inconsistent shapes', () => {
    expect(() => readHFConfig(withConfig({ ...golden(), model_type: 'llama' }))).toThrow(/"model_type" is "llama", expected "gpt_neox"/);
    expect(() => readHFConfig(withConfig({ ...golden(), num_attention_heads: 5 }))).toThrow(/not divisible/);
    expect(() => readHFConfig(withConfig({ ...golden(), hidden_act: 'relu' }))).toThrow(/"hidden_act" is "relu", expected one of: gelu/);
    expect(() => readHFConfig(withConfig({ ...golden(), rope_scaling: { type: 'linear', factor: 2 } }))).toThrow(/rope_scaling/);
    expect(() => readHFConfig(withConfig('{ not json'))).toThrow(/config.json: not valid JSON/);
    expect(() => readHFConfig(tmp())).toThrow(/no config.json/);
  });
});
