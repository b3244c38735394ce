import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { UserError } from '../util/errors.js';
import { ROOT } from '../util/paths.js';
import { TASK_LOADERS, type TaskName } from '../data/tasks/index.js';

export type MetricName = 'acc' | 'acc_norm' | 'f1_weighted' | 'entity_f1' | 'perplexity';
const METRICS: readonly MetricName[] = ['acc', 'acc_norm', 'f1_weighted', 'entity_f1', 'perplexity'];

/**
 * A task definition (src/eval/tasks/<name>.yaml), after lm-evaluation-harness task configs.
 * `multiple_choice`: score target_delimiter + each choice after the prompt; `loglikelihood`:
 * score target_delimiter + the target alone (LAMBADA: greedy match + perplexity).
 */
export interface TaskConfig {
  file: string;
  task: string;
  dataset: { loader: TaskName; split: 'train' | 'test' };
  output_type: 'multiple_choice' | 'loglikelihood';
  description: string;
  doc_to_text: string;
  /** Fixed options, or "{{choices}}" for the per-document options the loader provides. */
  doc_to_choice: string[] | 'per_doc';
  /** Renders to a choice's text or index; loglikelihood: the continuation text. */
  doc_to_target: string;
  target_delimiter: string;
  fewshot_delimiter: string;
  num_fewshot: number;
  /** Where few-shot examples come from; null: the task has none (0-shot only). */
  fewshot_split: 'train' | null;
  /**
   * lm-eval's `fewshot_config.sampler`: `default` draws examples per document (seeded), `first_n`
   * takes the first n of the few-shot split in order, as lm-eval's FirstNSampler does.
   */
  fewshot_sampler: 'default' | 'first_n';
  metrics: MetricName[];
}

export const TASKS_DIR = path.join(ROOT, 'src', 'eval', 'tasks');

/** Task names shipped in src/eval/tasks. */
export async function builtinTasks(): Promise<string[]> {
  return (await fs.readdir(TASKS_DIR)).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
}

/** A task by name (src/eval/tasks/<name>.yaml) or by a path to a YAML file. */
export async function loadTaskConfig(nameOrFile: string): Promise<TaskConfig> {
  const file = /\.ya?ml$/.test(nameOrFile) ? path.resolve(nameOrFile) : path.join(TASKS_DIR, `${nameOrFile}.yaml`);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    const known = await builtinTasks().catch(() => []);
    throw new UserError(`unknown task "${nameOrFile}" (no ${file}). Known tasks: ${known.join(', ')}`);
  }
  return parseTaskConfig(file, text);
}

/** Validate a task YAML, collecting every problem with its key path. */
export function parseTaskConfig(file: string, text: string): TaskConfig {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new UserError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
  const raw = doc.toJS() as Record<string, unknown> | null;
  const errs: string[] = [];
  if (!raw || typeof raw !== 'object') throw new UserError(`${file}: expected a mapping of task keys`);
  const str = (key: string, def?: string): string => {
    const v = raw[key];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== 'string') errs.push(`${key}: expected a string`);
    return typeof v === 'string' ? v : '';
  };
  const ds = raw.dataset as Record<string, unknown> | undefined;
  const loader = ds?.loader;
  if (typeof loader !== 'string' || !(loader in TASK_LOADERS)) errs.push(`dataset.loader: expected one of ${Object.keys(TASK_LOADERS).join(', ')}`);
  const split = ds?.split ?? 'test';
  if (split !== 'train' && split !== 'test') errs.push(`dataset.split: expected train or test`);
  const outputType = raw.output_type ?? 'multiple_choice';
  if (outputType !== 'multiple_choice' && outputType !== 'loglikelihood') errs.push(`output_type: expected multiple_choice or loglikelihood`);
  let choice: string[] | 'per_doc' = [];
  const rc = raw.doc_to_choice;
  if (typeof rc === 'string' && /^\{\{\s*choices\s*\}\}$/.test(rc)) choice = 'per_doc';
  else if (Array.isArray(rc) && rc.length >= 2 && rc.every((c) => typeof c === 'string')) choice = rc as string[];
  else if (outputType === 'multiple_choice') errs.push(`doc_to_choice: expected a list of at least 2 strings or "{{choices}}"`);
  const shots = raw.num_fewshot ?? 0;
  if (!Number.isInteger(shots) || (shots as number) < 0) errs.push(`num_fewshot: expected an integer >= 0`);
  const fs0 = raw.fewshot_split ?? null;
  if (fs0 !== null && fs0 !== 'train') errs.push(`fewshot_split: expected "train" or null (few-shot examples never come from the test split)`);
  const fc = raw.fewshot_config as { sampler?: unknown } | undefined;
  const sampler = fc?.sampler ?? 'default';
  if (sampler !== 'default' && sampler !== 'first_n') errs.push(`fewshot_config.sampler: expected default or first_n`);
  const metrics = (raw.metrics ?? ['acc']) as unknown;
  if (!Array.isArray(metrics) || !metrics.every((m) => METRICS.includes(m as MetricName)))
    errs.push(`metrics: expected a list drawn from ${METRICS.join(', ')}`);
  const cfg: TaskConfig = {
    file,
    task: str('task', path.basename(file).replace(/\.ya?ml$/, '')),
    dataset: { loader: loader as TaskName, split: split as 'train' | 'test' },
    output_type: outputType as TaskConfig['output_type'],
    description: str('description', ''),
    doc_to_text: str('doc_to_text'),
    doc_to_choice: choice,
    doc_to_target: str('doc_to_target', '{{gold}}'),
    target_delimiter: str('target_delimiter', ' '),
    fewshot_delimiter: str('fewshot_delimiter', '\n\n'),
    num_fewshot: shots as number,
    fewshot_split: fs0 as 'train' | null,
    fewshot_sampler: sampler as TaskConfig['fewshot_sampler'],
    metrics: metrics as MetricName[],
  };
  for (const k of Object.keys(raw))
    if (!['task', 'dataset', 'output_type', 'description', 'doc_to_text', 'doc_to_choice', 'doc_to_target', 'target_delimiter', 'fewshot_delimiter', 'num_fewshot', 'fewshot_split', 'fewshot_config', 'metrics'].includes(k))
      errs.push(`${k}: unknown key`);
  if (errs.length) throw new UserError(`${file}: ${errs.length} problem(s):\n  ${errs.join('\n  ')}`);
  return cfg;
}
