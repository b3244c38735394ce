import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lossChartSpec, plotRuns, readRuns } from '../../src/monitor/plot.js';
import type { MetricRecord } from '../../src/monitor/metrics.js';

function fakeRun(root: string, name: string, slope: number): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let s = 0; s <= 20; s++) {
    const mon = s % 5 === 0;
    const r: MetricRecord = { step: s, tokens: s * 2048, lr: s ? 1e-3 : null, loss: s ? 6 - slope * s : null, grad_norm: s ? 1 : null,
      fin_test: mon ? 6 - slope * s : null, pile_test: mon ? 4 + 0.01 * s : null, tok_s: s ? 100 : null, time: s };
    lines.push(JSON.stringify(r));
  }
  writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  return dir;
}

describe('plot', () => {
  it('builds one series per run and panel from the monitor records', () => {
    const runs = [
      { name: 'a', records: [{ step: 0, tokens: 0, lr: null, loss: null, grad_norm: null, fin_test: 5, pile_test: 4, tok_s: null, time: 0 }] },
      { name: 'b', records: [{ step: 3, tokens: 300, lr: 1, loss: 2, grad_norm: 1, fin_test: null, pile_test: 3.5, tok_s: 1, time: 1 }] },
    ];
    const spec = lossChartSpec(runs, { x: 'tokens', train: false }) as unknown as { data: { values: unknown[] } };
    expect(spec.data.values).toEqual([
      { run: 'a', x: 0, panel: 'Fin-test loss', value: 5 },
      { run: 'a', x: 0, panel: 'Pile-test loss', value: 4 },
      { run: 'b', x: 300, panel: 'Pile-test loss', value: 3.5 },
    ]);
  });
  it('style: colour by group, dash by variant (one pattern each, in the legend); symlog x', () => {
    const rec = (fin: number) => ({ step: 0, tokens: 1000, lr: null, loss: null, grad_norm: null, fin_test: fin, pile_test: null, tok_s: null, time: 0 });
    const runs = ['m-hard', 'm-soft', 'all'].map((name, i) => ({ name, records: [rec(i)] }));
    const style = (r: string) => (r === 'all' ? { color: 'all', dash: 'none' } : { color: 'm', dash: r.slice(2) });
    const spec = lossChartSpec(runs, { x: 'tokens', train: false, logX: true, style }) as unknown as {
      data: { values: { run: string; color: string; dash: string }[] };
      spec: { encoding: { x: { scale: { type: string } }; strokeDash: { scale: { domain: string[]; range: number[][] } }; detail: { field: string } } };
    };
    expect(spec.data.values.map((v) => [v.run, v.color, v.dash])).toEqual([['m-hard', 'm', 'hard'], ['m-soft', 'm', 'soft'], ['all', 'all', 'none']]);
    const enc = spec.spec.encoding;
    expect(enc.x.scale.type).toBe('symlog');
    expect(enc.strokeDash.scale.domain).toEqual(['hard', 'none', 'soft']);
    expect(new Set(enc.strokeDash.scale.range.map(String)).size).toBe(3);
    expect(enc.detail.field).toBe('run'); // one line per run even when runs share colour and dash
  });
  it('renders SVG and PNG with titles, axis labels and a legend naming each run', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'cpt-plot-'));
    const a = fakeRun(root, 'dacp', 0.1), b = fakeRun(root, 'ets-dacp', 0.15);
    const r = await plotRuns([a, b], { x: 'tokens', train: true });
    expect(r.png).toBe(path.join(a, 'plots', 'loss.png'));
    const png = readFileSync(r.png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const svg = readFileSync(r.svg, 'utf8');
    for (const s of ['Fin-test loss', 'Pile-test loss', 'Train loss', 'tokens seen', 'dacp', 'ets-dacp']) expect(svg).toContain(s);
    expect(svg).not.toMatch(/>0k</); // the first tick reads 0, not 0k
    expect(svg).toMatch(/>40k</);
    expect(existsSync(path.join(a, 'plots', 'loss.svg'))).toBe(true);
  });
  it('a run continued from another listed run\'s final/ starts where that one ended', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'cpt-plot-'));
    const base = fakeRun(root, 'base', 0.1), cont = fakeRun(root, 'cont', 0.05), other = fakeRun(root, 'other', 0.05);
    mkdirSync(path.join(cont, 'step-20'));
    writeFileSync(path.join(cont, 'step-20', 'recipe.resolved.yaml'), `model:\n  init: ${path.join(base, 'final')}\n`);
    const [b, c, o] = readRuns([base, cont, other]);
    expect(b.records[0].tokens).toBe(0);
    expect(c.records.map((r) => [r.step, r.tokens]).slice(0, 2)).toEqual([[20, 20 * 2048], [21, 21 * 2048]]);
    expect(o.records[0].tokens).toBe(0); // not continued from a listed run
    expect(readRuns([cont])[0].records[0].tokens).toBe(0); // its base not listed: its own axis
  });
  it('refuses a directory without metrics', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'cpt-plot-'));
    await expect(plotRuns([root], { x: 'step', train: false })).rejects.toThrow(/no metrics.jsonl/);
  });
});
