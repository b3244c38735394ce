import { describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MetricsLog, readMetrics, type MetricRecord } from '../../src/monitor/metrics.js';

const rec = (step: number): MetricRecord => ({ step, tokens: step * 100, lr: 1e-3, loss: 5 - step / 10, grad_norm: 1, fin_test: null, pile_test: null, tok_s: 10, time: step });

describe('metrics log', () => {
  it('appends one JSON line per record and reads them back', () => {
    const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'cpt-m-')), 'metrics.jsonl');
    const log = new MetricsLog(f);
    for (let i = 0; i < 5; i++) log.append(rec(i));
    expect(readMetrics(f)).toEqual([0, 1, 2, 3, 4].map(rec));
  });
  it('truncates back to a step, dropping later records and a partial last line', () => {
    const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'cpt-m-')), 'metrics.jsonl');
    const log = new MetricsLog(f);
    for (let i = 0; i < 7; i++) log.append(rec(i));
    appendFileSync(f, '{"step":7,"tok'); // a kill mid-write
    expect(log.truncateTo(4)).toBe(5);
    expect(readMetrics(f).map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
  });
  it('names the file and line of a bad record', () => {
    const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'cpt-m-')), 'metrics.jsonl');
    writeFileSync(f, JSON.stringify(rec(0)) + '\nnot json\n' + JSON.stringify(rec(2)) + '\n');
    expect(() => readMetrics(f)).toThrow(`${f}:2: not a JSON object`);
  });
});
