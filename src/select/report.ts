/**
 * report.md for a selection: documents and tokens kept per source, score summaries, per-metric
 * histograms (selected vs not, with the hard cut line) as SVG/PNG, and Jaccard overlap with the
 * other selections found beside this run (<runs>/*\/selection/ids.txt).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { renderChart, type VegaLiteSpec } from '../util/chart.js';
import { writeFileAtomic } from '../util/atomic.js';
import { getMetric } from './metrics/registry.js';
import type { ScoreTable } from './score-file.js';
import { SELECTION_FILE, type SelectionInfo } from './write-selected.js';

export const IDS_FILE = 'ids.txt';
const BINS = 40;

export interface Summary {
  n: number;
  mean: number;
  min: number;
  p10: number;
  median: number;
  p90: number;
  max: number;
}

/** Summary statistics over the finite values (n = 0 → NaN fields). */
export function summarise(xs: ArrayLike<number>): Summary {
  const v = Array.from(xs).filter(Number.isFinite).sort((a, b) => a - b);
  const q = (p: number): number => (v.length ? v[Math.min(v.length - 1, Math.floor(p * (v.length - 1) + 0.5))] : NaN);
  return { n: v.length, mean: v.length ? v.reduce((s, x) => s + x, 0) / v.length : NaN, min: q(0), p10: q(0.1), median: q(0.5), p90: q(0.9), max: q(1) };
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  let inter = 0;
  const [small, big] = a.size < b.size ? [a, b] : [b, a];
  for (const x of small) if (big.has(x)) inter++;
  const union = a.size + b.size - inter;
  return union === 0 ? 1 : inter / union;
}

/** Which metric values a histogram shows: log10 for metrics that span orders of magnitude. */
function axisValue(m: string, x: number): number {
  return getMetric(m).logAxis ? Math.log10(x) : x;
}

function histogramSpec(m: string, scores: Float64Array, chosen: Uint8Array, cut: number | null): VegaLiteSpec {
  const xs: number[] = [];
  for (let i = 0; i < scores.length; i++) if (Number.isFinite(scores[i])) xs.push(axisValue(m, scores[i]));
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const w = hi > lo ? (hi - lo) / BINS : 1;
  const counts = [new Array(BINS).fill(0), new Array(BINS).fill(0)];
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) continue;
    const b = Math.min(BINS - 1, Math.floor((axisValue(m, scores[i]) - lo) / w));
    counts[chosen[i]][b]++;
  }
  const values: Record<string, unknown>[] = [];
  for (let b = 0; b < BINS; b++) {
    for (const s of [0, 1]) if (counts[s][b]) values.push({ x0: lo + b * w, x1: lo + (b + 1) * w, count: counts[s][b], set: s ? 'selected' : 'not selected' });
  }
  const title = getMetric(m).label;
  const layers: unknown[] = [
    {
      mark: { type: 'bar', opacity: 0.85 },
      encoding: {
        x: { field: 'x0', type: 'quantitative', bin: { binned: true }, title },
        x2: { field: 'x1' },
        // Symmetric-log counts, overlaid: the selected tail (a few % of the documents) stays visible.
        y: { field: 'count', type: 'quantitative', stack: null, scale: { type: 'symlog' }, title: 'documents (symlog)' },
        color: { field: 'set', type: 'nominal', scale: { domain: ['selected', 'not selected'], range: ['#d62728', '#9fb3c8'] }, title: null },
      },
      data: { values },
    },
  ];
  if (cut !== null && Number.isFinite(cut)) {
    layers.push({ mark: { type: 'rule', color: 'black', strokeDash: [4, 3] }, data: { values: [{ cut: axisValue(m, cut) }] }, encoding: { x: { field: 'cut', type: 'quantitative' } } });
  }
  return { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 520, height: 220, title: `${m}: selected vs not (dashed: hard cut)`, layer: layers } as VegaLiteSpec;
}

const fmt = (x: number): string => (Number.isFinite(x) ? (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toPrecision(4)) : '–');

export interface ReportInput {
  dir: string; // the selection dir
  runDir: string;
  name: string;
  info: SelectionInfo;
  scores: ScoreTable | null; // null for TACP
  chosen: Uint8Array | null; // per score row
  /** Per-source kept documents/tokens (TACP: the task texts). */
  perSource: { source: string; docs: number; tokens: number; corpusDocs: number; corpusTokens: number }[];
  ids: string[];
}

/** Writes ids.txt, the histograms and report.md. Returns the report path. */
export async function writeReport(r: ReportInput): Promise<string> {
  await writeFileAtomic(path.join(r.dir, IDS_FILE), r.ids.join('\n') + '\n');
  const L: string[] = [];
  const i = r.info;
  L.push(`# Selection report: ${r.name}`, '');
  L.push(`- method: **${i.method}**${i.metrics.length ? ` (metrics: ${i.metrics.join(', ')})` : ''}, sampling: ${i.sampling}${i.sampling === 'soft' ? ` (temperature ${i.temperature}, seed ${i.seed})` : ''}`);
  L.push(`- budget: ${(i.budget * 100).toFixed(1)}% of ${i.corpus_tokens.toLocaleString('en-US')} corpus tokens = ${i.budget_tokens.toLocaleString('en-US')} tokens`);
  L.push(`- selected: ${i.selected_docs.toLocaleString('en-US')} documents, ${i.selected_tokens.toLocaleString('en-US')} tokens (of ${i.corpus_docs.toLocaleString('en-US')} non-held-out documents; Fin-test fraction ${i.fin_test_fraction} excluded)`);
  L.push('', '## Kept per source', '', '| source | docs kept | of docs | tokens kept | of tokens | token share kept |', '|---|---:|---:|---:|---:|---:|');
  for (const s of r.perSource) {
    L.push(`| ${s.source} | ${s.docs} | ${s.corpusDocs} | ${s.tokens} | ${s.corpusTokens} | ${s.corpusTokens ? ((100 * s.tokens) / s.corpusTokens).toFixed(1) + '%' : '–'} |`);
  }
  if (r.scores && r.chosen) {
    const computed = Object.keys(r.scores.scores).filter((m) => r.scores!.scores[m].some(Number.isFinite));
    if (computed.length) {
      L.push('', '## Scores', '', '| metric | set | n | mean | min | p10 | median | p90 | max |', '|---|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const m of computed) {
        const col = r.scores.scores[m];
        const sel = col.filter((_, k) => r.chosen![k] === 1);
        for (const [label, xs] of [['all', col], ['selected', sel]] as const) {
          const s = summarise(xs);
          L.push(`| ${m} | ${label} | ${s.n} | ${fmt(s.mean)} | ${fmt(s.min)} | ${fmt(s.p10)} | ${fmt(s.median)} | ${fmt(s.p90)} | ${fmt(s.max)} |`);
        }
      }
      L.push('', '## Histograms', '');
      for (const m of computed) {
        const col = r.scores.scores[m];
        // The hard cut: the lowest score kept (only meaningful when this metric alone ranked).
        let cut: number | null = null;
        if (i.sampling === 'hard' && i.metrics.length === 1 && i.metrics[0] === m) {
          cut = Infinity;
          for (let k = 0; k < col.length; k++) if (r.chosen[k] && Number.isFinite(col[k])) cut = Math.min(cut, col[k]);
        }
        const base = path.join(r.dir, `hist-${m}`);
        await renderChart(histogramSpec(m, col, r.chosen, cut), base);
        L.push(`![${m}](hist-${m}.svg)`, '');
      }
    }
  }
  const others = await otherSelections(r.runDir, r.info);
  if (others.length) {
    const mine = new Set(r.ids);
    L.push('## Overlap with other selections (Jaccard of document ids)', '', '| run | method | docs | Jaccard |', '|---|---|---:|---:|');
    for (const o of others) L.push(`| ${o.name} | ${o.method} | ${o.ids.size} | ${jaccard(mine, o.ids).toFixed(3)} |`);
    L.push('');
  }
  const file = path.join(r.dir, 'report.md');
  await writeFileAtomic(file, L.join('\n') + '\n');
  return file;
}

/**
 * Completed selections of sibling runs (<runs dir>/<name>/selection/{ids.txt, selection.json}) over
 * the same prepared corpus: ids of another corpus share nothing, and an overlap with them says nothing.
 */
async function otherSelections(runDir: string, mine: SelectionInfo): Promise<{ name: string; method: string; ids: Set<string> }[]> {
  const parent = path.dirname(runDir);
  const out: { name: string; method: string; ids: Set<string> }[] = [];
  let names: string[];
  try {
    names = (await fs.readdir(parent)).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const d = path.join(parent, n);
    if (path.resolve(d) === path.resolve(runDir)) continue;
    const idsFile = path.join(d, 'selection', IDS_FILE);
    const man = path.join(d, 'selection', SELECTION_FILE);
    if (!existsSync(idsFile) || !existsSync(man)) continue;
    try {
      const m = JSON.parse(await fs.readFile(man, 'utf8')) as { corpus_dir?: string; selection?: { method?: string; sampling?: string; corpus_fingerprint?: string; corpus_dir?: string } };
      const theirs = m.selection?.corpus_fingerprint ?? m.selection?.corpus_dir ?? m.corpus_dir;
      if (theirs !== (mine.corpus_fingerprint ?? mine.corpus_dir)) continue;
      const ids = new Set((await fs.readFile(idsFile, 'utf8')).split('\n').filter(Boolean));
      out.push({ name: n, method: `${m.selection?.method ?? '?'} (${m.selection?.sampling ?? '?'})`, ids });
    } catch {
      /* a half-written sibling selection is skipped */
    }
  }
  return out;
}
