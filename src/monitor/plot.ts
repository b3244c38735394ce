import path from 'node:path';
import { existsSync } from 'node:fs';
import { newestResolvedRecipe } from '../train/checkpoint-store.js';
import { renderChart, type VegaLiteSpec } from '../util/chart.js';
import { UserError } from '../util/errors.js';
import { readMetrics, type MetricRecord } from './metrics.js';
import { readNeoxRun } from './neox-log.js';
import { readHfTrainerRun } from './hf-trainer-log.js';
import { exportKind } from '../export/out-dir.js';

export interface PlotOptions {
  /** Output directory (default `<first run>/plots`). */
  out?: string;
  x: 'tokens' | 'step';
  /** Add a panel with the per-step training loss. */
  train: boolean;
  /**
   * Symmetric-log x axis: runs of very different lengths (10% and 100% of a corpus) stay readable
   * side by side; linear near 0, where every run starts.
   */
  logX?: boolean;
  /** Colour group and dash style of each run (e.g. method and sampling); default one colour per run. */
  style?: (run: string) => { color: string; dash: string };
}

export interface RunSeries {
  name: string;
  records: MetricRecord[];
}

const PANELS: { key: 'fin_test' | 'pile_test' | 'task_test' | 'loss'; title: string }[] = [
  { key: 'fin_test', title: 'Fin-test loss' },
  { key: 'pile_test', title: 'Pile-test loss' },
  { key: 'task_test', title: 'Task-test loss' },
  { key: 'loss', title: 'Train loss' },
];

const DASHES = [[1, 0], [7, 3], [2, 2], [8, 3, 2, 3]];

/** Run names for the legend: the directory's base name, made unique by its parent if needed. */
export function runNames(dirs: string[]): string[] {
  const base = dirs.map((d) => path.basename(path.resolve(d)));
  return base.map((b, i) => (base.filter((x) => x === b).length > 1 ? path.join(path.basename(path.dirname(path.resolve(dirs[i]))), b) : b));
}

/** Vega-Lite spec: one panel per loss (independent y), one colour per run, shared legend. */
export function lossChartSpec(runs: RunSeries[], opts: Pick<PlotOptions, 'x' | 'train' | 'logX' | 'style'>): VegaLiteSpec {
  // Task-test loss only where a run measured it (monitor.task_test_tokens).
  const hasTask = runs.some((r) => r.records.some((x) => typeof x.task_test === 'number'));
  const panels = PANELS.filter((p) => (p.key !== 'loss' || opts.train) && (p.key !== 'task_test' || hasTask));
  const values: { run: string; x: number; panel: string; value: number; color?: string; dash?: string }[] = [];
  for (const r of runs) {
    const style = opts.style?.(r.name);
    for (const rec of r.records) {
      for (const p of panels) {
        const v = rec[p.key];
        if (typeof v === 'number' && Number.isFinite(v)) values.push({ run: r.name, x: opts.x === 'tokens' ? rec.tokens : rec.step, panel: p.title, value: v, ...style });
      }
    }
  }
  const xTitle = `${opts.x === 'tokens' ? 'tokens seen' : 'optimizer step'}${opts.logX ? ' (symlog scale)' : ''}`;
  // The symlog constant: linear below about 1% of the longest run.
  const xMax = Math.max(1, ...values.map((v) => v.x));
  const dashes = [...new Set(values.map((v) => v.dash!))].sort();
  const styled = opts.style
    ? {
        color: { field: 'color', type: 'nominal', title: 'run', legend: { orient: 'bottom' } },
        strokeDash: {
          field: 'dash',
          type: 'nominal',
          title: 'sampling',
          scale: { domain: dashes, range: dashes.map((_, i) => DASHES[i % DASHES.length]) },
          legend: { orient: 'bottom', symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400, encode: { symbols: { update: { stroke: { value: '#333' } } } } },
        },
        detail: { field: 'run' },
      }
    : { color: { field: 'run', type: 'nominal', title: 'run', legend: { orient: 'bottom' } } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `Loss trajectories (${runs.length} run${runs.length > 1 ? 's' : ''})`, fontSize: 16 },
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', sort: panels.map((p) => p.title), title: null, header: { labelFontSize: 14 } } },
    spec: {
      width: 360,
      height: 260,
      mark: { type: 'line', point: { size: 18 }, strokeWidth: 2 },
      encoding: {
        // SI ticks share a prefix, so 0 would read "0k".
        x: { field: 'x', type: 'quantitative', title: xTitle, axis: { format: '~s', labelExpr: "datum.value == 0 ? '0' : datum.label" }, ...(opts.logX ? { scale: { type: 'symlog', constant: xMax / 100 } } : {}) },
        y: { field: 'value', type: 'quantitative', title: 'loss (nats / token)', scale: { zero: false } },
        ...styled,
        tooltip: [{ field: 'run' }, { field: 'x' }, { field: 'value' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: { font: 'DejaVu Sans' },
  } as VegaLiteSpec;
}

/**
 * Each run's loss records (cpt's metrics.jsonl, or an export's trainer log). A run continued from
 * another listed run's final/ starts where that one ended (a base run and its continuations on one
 * axis), through chains of them.
 */
export function readRuns(runDirs: string[]): RunSeries[] {
  const names = runNames(runDirs);
  const runs = runDirs.map((d, i) => {
    // A run handed to another trainer by cpt export: its own log.
    const kind = exportKind(d);
    if (kind === 'cpt-neox-export') return { name: names[i], records: readNeoxRun(d) };
    if (kind === 'cpt-hf-trainer-export') return { name: names[i], records: readHfTrainerRun(d) };
    const f = path.join(d, 'metrics.jsonl');
    if (!existsSync(f)) throw new UserError(`${d}: no metrics.jsonl (not a run directory, or the run has not started)`);
    return { name: names[i], records: readMetrics(f) };
  });
  const inits = runDirs.map(initOf);
  const finals = runDirs.map((d) => path.resolve(d, 'final'));
  const shift = (i: number, seen: Set<number>): { tokens: number; step: number } => {
    const base = inits[i] === undefined ? -1 : finals.indexOf(inits[i]!);
    if (base < 0 || seen.has(base)) return { tokens: 0, step: 0 };
    const before = shift(base, seen.add(i));
    const last = runs[base].records.at(-1);
    return { tokens: before.tokens + (last?.tokens ?? 0), step: before.step + (last?.step ?? 0) };
  };
  return runs.map((r, i) => {
    const by = shift(i, new Set());
    return by.tokens || by.step ? { ...r, records: r.records.map((x) => ({ ...x, tokens: x.tokens + by.tokens, step: x.step + by.step })) } : r;
  });
}

/** Read each run's records and write `loss.svg` + `loss.png`. */
export async function plotRuns(runDirs: string[], opts: PlotOptions): Promise<{ svg: string; png: string }> {
  if (runDirs.length === 0) throw new UserError('plot: give at least one run directory');
  const runs = readRuns(runDirs);
  if (!runs.some((r) => r.records.some((x) => x.fin_test !== null || x.pile_test !== null))) {
    throw new UserError(`plot: no Fin-test or Pile-test losses in ${runDirs.join(', ')} yet`);
  }
  const out = path.resolve(opts.out ?? path.join(runDirs[0], 'plots'));
  return renderChart(lossChartSpec(runs, opts), path.join(out, 'loss'));
}

/** The model a cpt run continued (model.init of its newest checkpoint's resolved recipe), absolute. */
function initOf(runDir: string): string | undefined {
  const init = (newestResolvedRecipe(runDir)?.model as { init?: unknown } | undefined)?.init;
  return typeof init === 'string' ? path.resolve(init) : undefined;
}
