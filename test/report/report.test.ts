// cpt report: one self-contained page, loaded in a real headless Chromium (Debian's chromium,
// driven by puppeteer-core): no console error, no request leaves the page, every chart renders
// (decoded, non-blank pixels), the tables carry both runs, and a full-page screenshot is neither
// small nor blank. Skipped with one line where chromium is missing (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { renderChart } from '../../src/util/chart.js';
import { run } from '../helpers/run.js';
import { ROOT } from '../../src/util/paths.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => spawnSync(p, ['--version']).status === 0);

/** A run directory as cpt train, select and eval leave it (the files the report reads). */
async function fakeRun(dir: string, o: { init: string; lr: number; budget: number; fin: number[]; offset?: number; hist?: boolean; acc: number }) {
  mkdirSync(path.join(dir, 'step-4'), { recursive: true });
  mkdirSync(path.join(dir, 'final'), { recursive: true });
  const recs = o.fin.map((f, i) => ({ step: i * 2, tokens: i * 2048, lr: o.lr, loss: i ? f + 0.3 : null, grad_norm: i ? 1.2 : null, fin_test: f, pile_test: f + 1, task_test: f + 0.5, tok_s: i ? 900 : null, time: i }));
  writeFileSync(path.join(dir, 'metrics.jsonl'), recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(path.join(dir, 'step-4', 'recipe.resolved.yaml'), stringify({ name: path.basename(dir), method: 'ets-dacp', model: { init: o.init }, selection: { sampling: 'hard', budget: o.budget }, train: { lr: o.lr, seq_len: 64 } }));
  const row = (metric: string, value: number, stderr: number | null) => ({ task: 'fpb', metric, value, stderr, n: 50, shots: 5, split: 'test', seconds: 1, examples_per_s: 50 });
  writeFileSync(path.join(dir, 'final', 'eval-limit50-seed1234.json'), JSON.stringify({ kind: 'cpt-eval-results', version: 1, model: path.join(dir, 'final'), engine: 'native-cpu', tokenizer: 't', seed: 1234, limit: 50, time: '2026-12-03T00:00:00Z', results: [row('acc', o.acc, 0.05), row('task_test_loss', 5.1, null)] }));
  if (o.hist) {
    mkdirSync(path.join(dir, 'selection'), { recursive: true });
    const values = Array.from({ length: 20 }, (_, b) => ({ x0: b / 20, x1: (b + 1) / 20, count: 40 - b, set: b > 15 ? 'selected' : 'not selected' }));
    await renderChart({ width: 400, height: 160, data: { values }, mark: 'bar', encoding: { x: { field: 'x0', type: 'quantitative', bin: { binned: true } }, x2: { field: 'x1' }, y: { field: 'count', type: 'quantitative' }, color: { field: 'set' } } }, path.join(dir, 'selection', 'hist-similarity'));
    writeFileSync(path.join(dir, 'selection', 'report.md'), '# Selection report: x\n\n- method: **ets-dacp**\n\n| source | docs kept |\n|---|---:|\n| reuters | 12 |\n\n![similarity](hist-similarity.svg)\n');
  }
}

describe('cpt report', () => {
  it.skipIf(!CHROMIUM)('writes one page that a headless Chromium loads offline, with every chart drawn and both runs in its tables', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'cpt-report-'));
    const base = path.join(tmp, 'base'), cont = path.join(tmp, 'ets');
    await fakeRun(base, { init: 'pythia-14m', lr: 1e-3, budget: 1, fin: [10, 8, 7.5], acc: 0.41 });
    await fakeRun(cont, { init: path.join(base, 'final'), lr: 3e-4, budget: 0.1, fin: [7.5, 6.9, 6.7], hist: true, acc: 0.55 });
    const study = path.join(tmp, 'study');
    mkdirSync(study);
    await renderChart({ width: 300, height: 120, data: { values: [{ a: 1, b: 2 }, { a: 2, b: 1 }] }, mark: 'line', encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } } }, path.join(study, 'plot'));
    writeFileSync(path.join(study, 'results.md'), '# Study\n\n| method | FPB acc |\n|---|---:|\n| dacp | 0.52 |\n\n![plot](plot.png)\n');

    const out = path.join(tmp, 'report.html');
    const r = await run(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'report', base, cont, study, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    // Self-contained: nothing but data: URIs, and a policy that forbids anything else.
    expect(html).not.toMatch(/(src|href)="(?!data:|#)/);
    expect(html).toContain("default-src 'none'");
    const lossSvg = Buffer.from(/alt="loss curves" src="data:image\/svg\+xml;base64,([^"]+)"/.exec(html)![1], 'base64').toString('utf8');
    for (const panel of ['Fin-test loss', 'Pile-test loss', 'Task-test loss', 'Train loss']) expect(lossSvg).toContain(panel);

    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1200, height: 900 });
      const problems: string[] = [];
      page.on('console', (m) => (m.type() === 'error' || m.type() === 'warn') && problems.push(`console ${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
      page.on('request', (q) => !q.url().startsWith('data:') && !q.url().startsWith('file:') && problems.push(`request: ${q.url()}`));
      await page.goto(`file://${out}`, { waitUntil: 'load' });
      // Every chart: decoded, and drawn with a real share of non-white pixels.
      const charts = await page.evaluate(async () => {
        const imgs = [...document.querySelectorAll('img')];
        return Promise.all(imgs.map(async (img) => {
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.naturalWidth, c.height = img.naturalHeight;
          const g = c.getContext('2d')!;
          g.fillStyle = '#fff', g.fillRect(0, 0, c.width, c.height), g.drawImage(img, 0, 0);
          const px = g.getImageData(0, 0, c.width, c.height).data;
          let ink = 0;
          for (let i = 0; i < px.length; i += 4) if (px[i] < 200 || px[i + 1] < 200 || px[i + 2] < 200) ink++;
          return { alt: img.alt, w: img.naturalWidth, h: img.naturalHeight, ink: ink / (px.length / 4) };
        }));
      });
      expect(charts.map((c) => c.alt)).toEqual(['loss curves', 'similarity', 'plot']);
      for (const c of charts) {
        expect(c.w, c.alt).toBeGreaterThan(200);
        expect(c.ink, c.alt).toBeGreaterThan(0.01);
      }
      const text = await page.evaluate(() => document.body.innerText);
      expect(text).toMatch(/fpb\s+acc\s+5\s+0\.4100 ± 0\.0500\s+0\.5500 ± 0\.0500/); // evaluation: both runs, with stderr
      const diff = await page.evaluate(() => [...document.querySelectorAll('tr.diff th')].map((t) => t.textContent));
      expect(diff).toEqual(expect.arrayContaining(['train.lr', 'selection.budget', 'model.init']));
      expect(diff).not.toContain('train.seq_len');
      expect(await page.evaluate(() => [...document.querySelectorAll('nav a')].map((a) => a.textContent))).toEqual(['Loss curves', 'Evaluation', 'Settings', 'Selection: ets', 'Study: study']);
      // A full-page screenshot: large and far from blank (a blank page of this size is a few KiB).
      const shot = await page.screenshot({ fullPage: true, type: 'png' });
      const blank = await browser.newPage().then(async (p) => (await p.setViewport({ width: 1200, height: 900 }), p.screenshot({ fullPage: true, type: 'png' })));
      expect(shot.length).toBeGreaterThan(60_000);
      expect(shot.length).toBeGreaterThan(10 * blank.length);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('names what a directory is not, in one line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-report-'));
    const r = await run(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'report', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`cpt: ${dir}: neither a run directory (metrics.jsonl), an export's run nor a study (results.md)`);
  });
});
if (!CHROMIUM) console.log("skipped: cpt report's browser test needs Debian's chromium (.ci/run installs it)");
