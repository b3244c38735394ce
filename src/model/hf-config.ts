/**
 * Hugging Face `config.json` for GPT-NeoX: read with validation (every problem named by file and
 * key), and written in full so `transformers` loads the directory unchanged.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { NeoXConfig } from './config.js';
import { UserError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic.js';

export const SUPPORTED_ACTS = ['gelu', 'gelu_new', 'gelu_fast', 'gelu_pytorch_tanh'];

type Kind = 'posint' | 'number' | 'bool' | 'string' | 'int';
/** Fields, their kind, and HF's GPTNeoXConfig default where it has one. */
const FIELDS: [keyof NeoXConfig, Kind, (number | boolean | string)?][] = [
  ['hidden_size', 'posint'],
  ['num_hidden_layers', 'posint'],
  ['num_attention_heads', 'posint'],
  ['intermediate_size', 'posint'],
  ['vocab_size', 'posint'],
  ['rotary_pct', 'number', 0.25],
  ['rotary_emb_base', 'number', 10000],
  ['max_position_embeddings', 'posint', 2048],
  ['layer_norm_eps', 'number', 1e-5],
  ['hidden_act', 'string', 'gelu'],
  ['use_parallel_residual', 'bool', true],
  ['tie_word_embeddings', 'bool', false],
  ['initializer_range', 'number', 0.02],
  ['bos_token_id', 'int', 0],
  ['eos_token_id', 'int', 2],
];

/** Validate a parsed config object; `where` names the file in messages. Collects every error. */
export function parseHFConfig(raw: unknown, where: string): NeoXConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${where}: expected a JSON object`);
  const o = { ...(raw as Record<string, unknown>) };
  const errors: string[] = [];
  // Newer transformers name the rotary base rope_theta.
  if (o.rotary_emb_base === undefined && o.rope_theta !== undefined) o.rotary_emb_base = o.rope_theta;
  if (o.model_type !== undefined && o.model_type !== 'gpt_neox') errors.push(`key "model_type" is ${JSON.stringify(o.model_type)}, expected "gpt_neox"`);
  if (o.rope_scaling !== undefined && o.rope_scaling !== null) errors.push(`key "rope_scaling" is set; rotary scaling is not supported (expected null)`);
  if (o.attention_bias === false) errors.push(`key "attention_bias" is false; only attention with biases (Pythia) is supported`);
  const out: Record<string, unknown> = {};
  for (const [key, kind, def] of FIELDS) {
    let v = o[key];
    if (v === undefined || v === null) {
      if (def === undefined) {
        errors.push(`missing key "${key}" (${describe(kind)})`);
        continue;
      }
      v = def;
    }
    const ok =
      kind === 'bool' ? typeof v === 'boolean'
      : kind === 'string' ? typeof v === 'string'
      : typeof v === 'number' && Number.isFinite(v) &&
        (kind === 'number' || (Number.isInteger(v) && (kind === 'int' ? v >= 0 : v > 0)));
    if (!ok) errors.push(`key "${key}" is ${JSON.stringify(v)}, expected ${describe(kind)}`);
    out[key] = v;
  }
  const c = out as unknown as NeoXConfig;
  if (!errors.length) {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      errors.push(`key "hidden_size" (${c.hidden_size}) is not divisible by "num_attention_heads" (${c.num_attention_heads})`);
    }
    if (!(c.rotary_pct >= 0 && c.rotary_pct <= 1)) errors.push(`key "rotary_pct" is ${c.rotary_pct}, expected a number in [0, 1]`);
    else if (Math.floor((c.hidden_size / c.num_attention_heads) * c.rotary_pct) % 2 !== 0) {
      errors.push(`key "rotary_pct" gives an odd rotary dimension; expected head_dim * rotary_pct to be even`);
    }
    if (!(c.rotary_emb_base > 0)) errors.push(`key "rotary_emb_base" is ${c.rotary_emb_base}, expected a positive number`);
    if (!(c.layer_norm_eps > 0)) errors.push(`key "layer_norm_eps" is ${c.layer_norm_eps}, expected a positive number`);
    if (!SUPPORTED_ACTS.includes(c.hidden_act)) errors.push(`key "hidden_act" is "${c.hidden_act}", expected one of: ${SUPPORTED_ACTS.join(', ')}`);
  }
  if (errors.length) throw new UserError(`${where}: ${errors.length > 1 ? `${errors.length} problems:\n  ` : ''}${errors.join('\n  ')}`);
  return c;
}

function describe(kind: Kind): string {
  return { posint: 'a positive integer', int: 'a non-negative integer', number: 'a number', bool: 'true or false', string: 'a string' }[kind];
}

/** Read and validate `<dir>/config.json`. */
export function readHFConfig(dir: string): NeoXConfig {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) throw new UserError(`${dir}: no config.json (expected a Hugging Face GPT-NeoX model directory)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseHFConfig(raw, file);
}

/** The full HF config object for `cfg` (what transformers' GPTNeoXConfig.to_dict() carries). */
export function hfConfigObject(cfg: NeoXConfig, torchDtype: 'float32' | 'bfloat16' | 'float16' = 'float32'): Record<string, unknown> {
  return {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    torch_dtype: torchDtype,
    hidden_size: cfg.hidden_size,
    num_hidden_layers: cfg.num_hidden_layers,
    num_attention_heads: cfg.num_attention_heads,
    intermediate_size: cfg.intermediate_size,
    hidden_act: cfg.hidden_act,
    rotary_pct: cfg.rotary_pct,
    rotary_emb_base: cfg.rotary_emb_base,
    max_position_embeddings: cfg.max_position_embeddings,
    vocab_size: cfg.vocab_size,
    layer_norm_eps: cfg.layer_norm_eps,
    use_parallel_residual: cfg.use_parallel_residual,
    tie_word_embeddings: cfg.tie_word_embeddings,
    initializer_range: cfg.initializer_range,
    bos_token_id: cfg.bos_token_id,
    eos_token_id: cfg.eos_token_id,
    attention_dropout: 0.0,
    hidden_dropout: 0.0,
    classifier_dropout: 0.1,
    rope_scaling: null,
    attention_bias: true,
    use_cache: true,
  };
}

/** Write `<dir>/config.json` atomically. */
export async function writeHFConfig(dir: string, cfg: NeoXConfig, torchDtype: 'float32' | 'bfloat16' | 'float16' = 'float32'): Promise<void> {
  await writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(hfConfigObject(cfg, torchDtype), null, 2) + '\n');
}
