import { UserError } from '../util/errors.js';
import type { TaskDoc } from '../data/tasks/index.js';
import type { TaskConfig } from './config.js';
import { render } from './template.js';
import { mulberry32 } from '../util/rng.js';
import { stableHash32 } from './random.js';

/** Template variables of a document: its fields plus `gold` (the answer index). */
function vars(doc: TaskDoc): Record<string, string> {
  return { ...doc.fields, gold: String(doc.gold ?? -1) };
}

export function docText(cfg: TaskConfig, doc: TaskDoc): string {
  return render(cfg.doc_to_text, vars(doc), `${cfg.file} doc_to_text (doc ${doc.id})`);
}

export function docChoices(cfg: TaskConfig, doc: TaskDoc): string[] {
  if (cfg.doc_to_choice === 'per_doc') {
    if (!doc.choices) throw new UserError(`${cfg.file}: doc_to_choice is "{{choices}}" but ${doc.id} has no per-document choices`);
    return doc.choices;
  }
  return cfg.doc_to_choice;
}

/** The gold answer: index into the choices (multiple_choice), as lm-eval resolves doc_to_target. */
export function docGold(cfg: TaskConfig, doc: TaskDoc): number {
  const t = render(cfg.doc_to_target, vars(doc), `${cfg.file} doc_to_target (doc ${doc.id})`);
  const choices = docChoices(cfg, doc);
  const byText = choices.indexOf(t);
  if (byText >= 0) return byText;
  if (/^\d+$/.test(t) && Number(t) < choices.length) return Number(t);
  throw new UserError(`${cfg.file}: doc_to_target of ${doc.id} gives ${JSON.stringify(t)}, neither a choice nor a choice index`);
}

/** The text after the target delimiter in a few-shot example (lm-eval: the gold choice's text). */
export function docTargetText(cfg: TaskConfig, doc: TaskDoc): string {
  if (cfg.output_type === 'loglikelihood') return render(cfg.doc_to_target, vars(doc), `${cfg.file} doc_to_target (doc ${doc.id})`);
  return docChoices(cfg, doc)[docGold(cfg, doc)]!;
}

/**
 * `k` few-shot examples for `doc`, drawn without replacement from `pool` (the train split) by a
 * PRNG seeded with (seed, doc id): deterministic per document whatever --limit or ordering is.
 * The document itself is never its own example (matters only if a pool overlapped the test split).
 */
export function sampleFewshot(pool: readonly TaskDoc[], k: number, seed: number, doc: TaskDoc): TaskDoc[] {
  if (k === 0) return [];
  const candidates = pool.filter((d) => d.id !== doc.id);
  if (candidates.length < k) throw new UserError(`only ${candidates.length} few-shot examples available, ${k} asked for`);
  const r = mulberry32(stableHash32(`${seed}\0${doc.id}`));
  // Partial Fisher–Yates over indices.
  const idx = Array.from(candidates.keys());
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(r() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k).map((i) => candidates[i]!);
}

/**
 * lm-eval's context: description + each example as doc_to_text + target_delimiter + target,
 * joined and followed by fewshot_delimiter, then the document's doc_to_text.
 */
export function buildContext(cfg: TaskConfig, doc: TaskDoc, shots: readonly TaskDoc[]): string {
  const examples = shots.map((s) => docText(cfg, s) + cfg.target_delimiter + docTargetText(cfg, s));
  const labeled = examples.length ? examples.join(cfg.fewshot_delimiter) + cfg.fewshot_delimiter : '';
  return cfg.description + labeled + docText(cfg, doc);
}

/** One scoring request: log p(continuation | context). */
export interface Request {
  context: string;
  continuation: string;
}

/** Requests of one document: one per choice (multiple_choice) or the target (loglikelihood). */
export function docRequests(cfg: TaskConfig, doc: TaskDoc, context: string): Request[] {
  if (cfg.output_type === 'loglikelihood') return [{ context, continuation: cfg.target_delimiter + docTargetText(cfg, doc) }];
  return docChoices(cfg, doc).map((c) => ({ context, continuation: cfg.target_delimiter + c }));
}

/**
 * lm-eval `_encode_pair`'s whitespace rule: trailing whitespace of the context moves to the front
 * of the continuation (BPE tokenisers attach a space to the following word).
 */
export function moveTrailingSpace(r: Request): Request {
  const n = r.context.length - r.context.trimEnd().length;
  if (n === 0) return r;
  return { context: r.context.slice(0, -n), continuation: r.context.slice(-n) + r.continuation };
}
