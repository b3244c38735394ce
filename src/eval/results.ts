import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import type { TaskResult } from './run.js';

/** One row of a results file: a metric of a task. */
export interface ResultRow {
  task: string;
  metric: string;
  value: number;
  stderr: number | null;
  n: number;
  shots: number;
  split: string;
  seconds: number;
  examples_per_s: number;
  /** Prompts cut at the start to fit the context (fewer shots than `shots` reached the model). */
  truncated_prompts?: number;
}

/** What `cpt eval` writes per model. */
export interface ResultsFile {
  kind: 'cpt-eval-results';
  version: 1;
  model: string;
  engine: string;
  tokenizer: string;
  seed: number;
  /** `--limit` as given: N, or N with per-task overrides (`100,ner=30`). */
  limit: number | string | null;
  /** ISO time the run finished. */
  time: string;
  /** What a rerun must match to continue this file (skipping `done` tasks) instead of starting over. */
  settings?: EvalSettings;
  /** Tasks finished, in order. */
  done?: string[];
  results: ResultRow[];
}

/** The settings a results file is named by and resumed under. */
export interface EvalSettings {
  shots: number | 'default';
  limit: string | null;
  seed: number;
  probe: boolean;
  probe_limit: number | null;
  engine: string;
  tokenizer: string;
}

/** File name for a model's results under `s`: one file per settings, so runs never overwrite each other. */
export function resultsName(s: EvalSettings): string {
  const limit = s.limit === null ? 'full' : `limit${s.limit.replace(/[^\w]+/g, '_')}`;
  return `eval-${s.shots === 'default' ? '' : `${s.shots}shot-`}${limit}-seed${s.seed}${s.probe ? `-probe${s.probe_limit ?? ''}` : ''}.json`;
}

export function resultRows(r: TaskResult): ResultRow[] {
  return r.metrics.map((m) => ({
    task: r.task,
    metric: m.metric,
    // JSON has no NaN: stderr of a single example is recorded as null.
    value: m.value,
    stderr: m.stderr === null || Number.isNaN(m.stderr) ? null : m.stderr,
    n: r.n,
    shots: r.shots,
    split: r.split,
    seconds: r.seconds,
    examples_per_s: r.examples_per_s,
    ...(r.truncated ? { truncated_prompts: r.truncated } : {}),
  }));
}

export async function readResults(file: string): Promise<ResultsFile> {
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: cannot read results (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const r = json as Partial<ResultsFile>;
  if (r?.kind !== 'cpt-eval-results' || !Array.isArray(r.results)) throw new UserError(`${file}: not a cpt eval results file (expected kind "cpt-eval-results" and a results list)`);
  return r as ResultsFile;
}

/** Short column label for a model: the run name for checkpoints/<run>/final, else the base name. */
export function modelLabel(model: string): string {
  const base = path.basename(model);
  return base === 'final' || /^step-?\d+$/.test(base) ? `${path.basename(path.dirname(model))}/${base}` : base;
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

/**
 * Markdown table: one row per (task, metric, shots), one column per results file; cells are
 * "value ± stderr". Rows follow first appearance across the files.
 */
export function compareTable(files: readonly ResultsFile[], labels: readonly string[] = files.map((f) => modelLabel(f.model))): string {
  const keys: string[] = [];
  const cells = new Map<string, Map<number, string>>();
  files.forEach((f, i) => {
    for (const r of f.results) {
      const k = `${r.task}\0${r.metric}\0${r.shots}`;
      if (!cells.has(k)) (keys.push(k), cells.set(k, new Map()));
      cells.get(k)!.set(i, r.stderr === null ? fmt(r.value) : `${fmt(r.value)} ± ${fmt(r.stderr)}`);
    }
  });
  const head = ['task', 'metric', 'shots', ...labels];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 3 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const k of keys) {
    const [task, metric, shots] = k.split('\0');
    lines.push(`| ${[task, metric, shots, ...files.map((_, i) => cells.get(k)!.get(i) ?? '–')].join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}
