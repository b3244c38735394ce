/**
 * One self-contained HTML page for runs and studies (`cpt report`): loss curves overlaid, the
 * evaluation table with standard errors, settings side by side (differences marked), each run's
 * selection report with its histograms, a study's tables and plots. Charts are SVG rendered here
 * and embedded as data: URIs; the page loads nothing and runs no script (its CSP forbids both).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Marked, type Tokens } from 'marked';
import pkg from '../../package.json' with { type: 'json' };
import { compareTable } from '../eval/results.js';
import { lossChartSpec, readRuns, runNames } from '../monitor/plot.js';
import { chartSvg } from '../util/chart.js';
import type { RunReport, StudyReport } from './collect.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '-');

function dataUri(file: string): string {
  const type = file.endsWith('.svg') ? 'image/svg+xml' : file.endsWith('.png') ? 'image/png' : 'application/octet-stream';
  return `data:${type};base64,${readFileSync(file).toString('base64')}`;
}

/** Markdown (cpt's own reports) as HTML, its relative images embedded. */
function markdown(text: string, baseDir: string): string {
  const md = new Marked({
    renderer: {
      image({ href, text: alt }: Tokens.Image) {
        const file = path.resolve(baseDir, href);
        return existsSync(file) ? `<img class="chart" alt="${esc(alt)}" src="${dataUri(file)}">` : `<em>(missing image ${esc(href)})</em>`;
      },
    },
  });
  return md.parse(text, { async: false });
}

/** Leaf values of a resolved recipe by dotted key; lists of sources by their names. */
function flatten(o: unknown, at = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(o)) out.set(at, o.map((x) => (x && typeof x === 'object' && 'name' in x ? String((x as { name: unknown }).name) : String(x))).join(', '));
  else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) flatten(v, at ? `${at}.${k}` : k, out);
  else out.set(at, String(o));
  return out;
}

/** The runs' resolved recipes side by side: where they differ first, every key folded below. */
function settings(runs: RunReport[], names: string[]): string {
  const flat = runs.map((r) => (r.recipe ? flatten(r.recipe) : new Map<string, string>()));
  const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].filter((k) => k !== 'file');
  const rows = keys.map((k) => ({ k, vals: flat.map((f) => f.get(k) ?? '–') })).map((r) => ({ ...r, differs: runs.length > 1 && new Set(r.vals).size > 1 }));
  const table = (rs: typeof rows) =>
    `<table class="settings"><thead><tr><th>key</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr></thead><tbody>${rs
      .map((r) => `<tr${r.differs ? ' class="diff"' : ''}><th>${esc(r.k)}</th>${r.vals.map((v) => `<td>${esc(v)}</td>`).join('')}</tr>`)
      .join('')}</tbody></table>`;
  const diff = rows.filter((r) => r.differs);
  const head = runs.length > 1 ? (diff.length ? `<p>Where the runs differ:</p>${table(diff)}` : '<p>The runs have the same settings.</p>') : '';
  return `${head}<details><summary>All ${rows.length} keys of the resolved recipe${runs.length > 1 ? 's' : ''}</summary>${table(rows)}</details>`;
}

export async function reportHtml(items: (RunReport | StudyReport)[], generated = new Date()): Promise<string> {
  const runs = items.filter((i): i is RunReport => i.kind === 'run');
  const studies = items.filter((i): i is StudyReport => i.kind === 'study');
  const names = runNames(runs.map((r) => r.dir));
  const body: string[] = [];
  const nav: string[] = [];
  const section = (id: string, title: string, html: string) => {
    nav.push(`<a href="#${id}">${esc(title)}</a>`);
    body.push(`<section id="${id}"><h2>${esc(title)}</h2>${html}</section>`);
  };

  if (runs.length) {
    const series = readRuns(runs.map((r) => r.dir));
    const hasLoss = series.some((s) => s.records.some((x) => x.fin_test !== null || x.pile_test !== null || x.loss !== null));
    const svg = hasLoss ? await chartSvg(lossChartSpec(series, { x: 'tokens', train: true })) : null;
    section('losses', 'Loss curves', svg
      ? `<p>Fin-test, Pile-test${series.some((s) => s.records.some((x) => typeof x.task_test === 'number')) ? ', task-test' : ''} and training loss against tokens trained; a run continued from another's final/ starts where that one ended.</p><img class="chart" alt="loss curves" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}">`
      : '<p>No losses logged yet.</p>');
    const evals = runs.flatMap((r, i) => r.evals.map((e) => ({ ...e, label: r.evals.length > 1 ? `${names[i]} (${path.basename(e.file)})` : names[i] })));
    section('evaluation', 'Evaluation', evals.length
      ? `<p>Value ± standard error per task and metric (cpt eval; ${evals.map((e) => esc(path.relative(process.cwd(), e.file) || e.file)).join(', ')}).</p>${markdown(compareTable(evals.map((e) => e.results), evals.map((e) => e.label)), '.')}`
      : '<p>No evaluation results in these runs (cpt eval --model RUN/final writes them into final/).</p>');
    section('settings', 'Settings', `<p>The resolved recipe of each run's newest checkpoint.</p>${settings(runs, names)}`);
    runs.forEach((r, i) => {
      if (r.selectionReport) section(`selection-${slug(names[i]!)}`, `Selection: ${names[i]}`, markdown(readFileSync(r.selectionReport, 'utf8').replace(/^# .*\n/, ''), path.dirname(r.selectionReport)));
    });
  }
  for (const s of studies) section(`study-${slug(path.basename(s.dir))}`, `Study: ${path.basename(s.dir)}`, markdown(readFileSync(s.results, 'utf8').replace(/^# .*\n/, ''), path.dirname(s.results)));

  const title = `cpt report: ${[...names, ...studies.map((s) => path.basename(s.dir))].join(', ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; color: #1d2430; }
h1 { margin: 24px 0 4px; } h2 { border-bottom: 1px solid #d8dee6; padding-bottom: 4px; margin-top: 36px; }
nav { position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #eef1f4; z-index: 1; }
nav a { margin-right: 16px; color: #1f5fa8; text-decoration: none; }
.meta { color: #5b6675; margin: 0 0 8px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13.5px; }
th, td { border: 1px solid #d8dee6; padding: 3px 8px; text-align: left; vertical-align: top; }
td { font-variant-numeric: tabular-nums; } thead th { background: #f3f6f9; }
tr.diff { background: #fff6d6; } summary { cursor: pointer; color: #1f5fa8; margin: 8px 0; }
img.chart { max-width: 100%; display: block; margin: 8px 0; }
</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">cpt ${esc(pkg.version)}, ${esc(generated.toISOString().slice(0, 16).replace('T', ' '))} UTC; ${items.map((x) => esc(path.relative(process.cwd(), x.dir) || x.dir)).join(', ')}</p>
<nav>${nav.join('')}</nav>
${body.join('\n')}
</body></html>
`;
}
