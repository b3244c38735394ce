/**
 * The study's tables and per-task plot: every figure as mean ± std over the seeds a run has
 * (sample standard deviation; a run trained once shows its value alone).
 */
import { FIN_TASKS } from '../../src/data/tasks/index.js';
import type { ResultsFile } from '../../src/eval/results.js';
import { renderChart, type VegaLiteSpec } from '../../src/util/chart.js';

/** One trained model: its method (the recipe name), its seed, and what was measured. */
export interface RunResult {
  method: string;
  seed: number;
  tokens: number | null;
  /** Matmul precision the training ran in (fp32 or bf16), from its checkpoint; null if unknown. */
  precision: string | null;
  trainSeconds: number | null;
  evalSeconds: number | null;
  finTest: number | null;
  pileTest: number | null;
  eval?: ResultsFile;
}

export const FIN = FIN_TASKS;
export const PROBED = ['fpb', 'fiqa_sa', 'headline'] as const;
const LABEL: Record<string, string> = { fpb: 'FPB', fiqa_sa: 'FiQA-SA', headline: 'Headline', ner: 'NER', arc_easy: 'ARC-Easy' };

export function metric(r: RunResult, task: string, name: string): number | null {
  return r.eval?.results.find((x) => x.task === task && x.metric === name)?.value ?? null;
}

export function meanStd(xs: (number | null)[]): { mean: number; std: number | null; n: number } | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (!v.length) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : null;
  return { mean, std, n: v.length };
}

function cell(xs: (number | null)[], digits: number, scale = 1): string {
  const s = meanStd(xs.map((x) => (x === null ? null : x * scale)));
  if (!s) return '-';
  return s.std === null ? s.mean.toFixed(digits) : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

function markdown(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const dur = (s: number | null) => (s === null ? '-' : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`);

/** Loss table: held-out losses of the corpus, the general text and each task's test text. */
export function lossTable(methods: string[], runs: RunResult[]): string {
  const header = ['run', 'seeds', 'precision', 'train tokens', 'select + train', 'eval', 'Fin-test loss', 'Pile-test loss', 'task-test loss (mean)', ...FIN.map((t) => `${LABEL[t]} test loss`)];
  const rows = methods.map((m) => {
    const rs = runs.filter((r) => r.method === m);
    const mean = (xs: (number | null)[]) => meanStd(xs)?.mean ?? null;
    const taskMean = (r: RunResult) => {
      const v = FIN.map((t) => metric(r, t, 'task_test_loss'));
      return v.every((x) => x !== null) ? (v as number[]).reduce((a, b) => a + b, 0) / v.length : null;
    };
    const precision = [...new Set(rs.map((r) => r.precision ?? '?'))].join('+');
    return [m === 'base' ? 'base (general corpus)' : m, String(rs.length), precision, String(rs[0]?.tokens ?? '-'), dur(mean(rs.map((r) => r.trainSeconds))),
      dur(mean(rs.map((r) => r.evalSeconds))), cell(rs.map((r) => r.finTest), 3), cell(rs.map((r) => r.pileTest), 3), cell(rs.map(taskMean), 3),
      ...FIN.map((t) => cell(rs.map((r) => metric(r, t, 'task_test_loss')), 3))];
  });
  return markdown(header, rows);
}

/** Task table: probe F1, the continuous likelihood metrics, and the prompted scores. */
export function taskTable(methods: string[], runs: RunResult[]): string {
  const header = ['run', ...PROBED.map((t) => `${LABEL[t]} probe F1`), ...FIN.map((t) => `${LABEL[t]} gold logprob/char`),
    'fin margin_norm (mean)', ...PROBED.map((t) => `${LABEL[t]} F1`), 'NER entity F1', 'ARC-Easy acc_norm'];
  const rows = methods.map((m) => {
    const rs = runs.filter((r) => r.method === m);
    const margin = (r: RunResult) => meanStd(FIN.map((t) => metric(r, t, 'margin_norm')))?.mean ?? null;
    return [m === 'base' ? 'base (general corpus)' : m, ...PROBED.map((t) => cell(rs.map((r) => metric(r, t, 'probe_f1_weighted')), 1, 100)),
      ...FIN.map((t) => cell(rs.map((r) => metric(r, t, 'gold_logprob_norm')), 3)), cell(rs.map(margin), 4),
      ...PROBED.map((t) => cell(rs.map((r) => metric(r, t, 'f1_weighted')), 1, 100)), cell(rs.map((r) => metric(r, 'ner', 'entity_f1')), 1, 100),
      cell(rs.map((r) => metric(r, 'arc_easy', 'acc_norm')), 1, 100)];
  });
  return markdown(header, rows);
}

/** Task-test loss (every financial task) and probe F1 (the probed ones) per method, mean ± std. */
export async function plotTasks(methods: string[], runs: RunResult[], base: string): Promise<{ svg: string; png: string } | null> {
  const values: { task: string; measure: string; method: string; mean: number; lo: number; hi: number }[] = [];
  const add = (task: string, measure: string, method: string, xs: (number | null)[]) => {
    const s = meanStd(xs);
    if (s) values.push({ task: LABEL[task] ?? task, measure, method, mean: s.mean, lo: s.mean - (s.std ?? 0), hi: s.mean + (s.std ?? 0) });
  };
  for (const m of methods) {
    const rs = runs.filter((r) => r.method === m);
    for (const t of FIN) add(t, 'task-test loss', m, rs.map((r) => metric(r, t, 'task_test_loss')));
    for (const t of PROBED) add(t, 'probe weighted F1 (%)', m, rs.map((r) => { const v = metric(r, t, 'probe_f1_weighted'); return v === null ? null : 100 * v; }));
  }
  if (!values.length) return null;
  const x = { field: 'method', type: 'nominal', sort: methods, title: null, axis: { labelAngle: -40 } } as const;
  // One faceted row per measure (vconcat, not a row facet: the probe row has no NER cell, and a
  // facet grid with independent y scales would shift the cells of a row with a missing one).
  const row = (measure: string): VegaLiteSpec => ({
    data: { values: values.filter((v) => v.measure === measure) },
    facet: { column: { field: 'task', title: null, sort: FIN.map((t) => LABEL[t]!) } },
    spec: {
      width: 170,
      height: 150,
      layer: [
        { mark: { type: 'rule' }, encoding: { x, y: { field: 'lo', type: 'quantitative', scale: { zero: false }, title: measure }, y2: { field: 'hi' } } },
        { mark: { type: 'point', filled: true, size: 40 }, encoding: { x, y: { field: 'mean', type: 'quantitative' }, color: { field: 'method', type: 'nominal', sort: methods, legend: null } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as VegaLiteSpec);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    vconcat: [row('task-test loss'), row('probe weighted F1 (%)')],
    title: { text: 'Per task: mean ± std over seeds (no bar: one seed)', anchor: 'start' },
  } as VegaLiteSpec;
  return renderChart(spec, base);
}
