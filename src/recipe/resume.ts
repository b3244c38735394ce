/**
 * What must not change across a resume: the model, the data, the selection, the batch shape and the
 * seed. Changing any of these mid-run silently trains a different experiment, so the trainer refuses.
 * Learning rate, schedule length, monitoring, checkpointing and engine may change.
 */
import { createHash } from 'node:crypto';
import type { Recipe } from './types.js';

/** Flat `key.path → value` map of the resume-relevant keys. */
export function resumeKeys(r: Recipe): Record<string, unknown> {
  const out: Record<string, unknown> = {
    method: r.method,
    'model.init': r.model.init,
    'data.corpus': r.data.corpus,
    'data.pile_test': r.data.pile_test,
    'data.tasks': r.data.tasks,
    'data.fin_test_fraction': r.data.fin_test_fraction,
    'data.tokenizer': r.data.tokenizer,
    'train.batch_tokens': r.train.batch_tokens,
    'train.seq_len': r.train.seq_len,
    'train.seed': r.train.seed,
  };
  for (const [k, v] of Object.entries(r.selection)) out[`selection.${k}`] = v;
  return out;
}

/** Stable JSON: object keys sorted, so equal values hash equally. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** 16 hex digits identifying the resume-relevant part of a recipe. */
export function recipeHash(r: Recipe): string {
  return createHash('sha256').update(canonical(resumeKeys(r))).digest('hex').slice(0, 16);
}

export interface KeyChange {
  key: string;
  before: unknown;
  after: unknown;
}

/**
 * Resume keys that differ between a saved run (`resumeKeys` of the recipe it started with, e.g. as
 * stored in its checkpoint) and the recipe now given. Empty means the resume is compatible.
 */
export function diffResumeKeys(saved: Record<string, unknown>, now: Recipe): KeyChange[] {
  const cur = resumeKeys(now);
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(cur)])].sort();
  return keys.filter((k) => canonical(saved[k]) !== canonical(cur[k])).map((k) => ({ key: k, before: saved[k], after: cur[k] }));
}

/** One line per change, for a UserError: `  train.seq_len: 2048 → 1024`. */
export function formatChanges(changes: KeyChange[]): string {
  const show = (v: unknown) => (v === undefined ? '(unset)' : canonical(v).slice(0, 120));
  return changes.map((c) => `  ${c.key}: ${show(c.before)} → ${show(c.after)}`).join('\n');
}
