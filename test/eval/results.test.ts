import { describe, expect, it } from 'vitest';
import { compareTable, modelLabel, resultRows, type ResultsFile } from '../../src/eval/results.js';

const file = (model: string, acc: number, extra = false): ResultsFile => ({
  kind: 'cpt-eval-results',
  version: 1,
  model,
  engine: 'fake',
  tokenizer: 't',
  seed: 1,
  limit: null,
  time: '2026-01-01T00:00:00Z',
  results: [
    ...resultRows({ task: 'fpb', split: 'test', n: 10, shots: 5, requests: 30, truncated: 0, seconds: 1, examples_per_s: 10, metrics: [{ metric: 'acc', value: acc, stderr: 0.01 }] }),
    ...(extra ? resultRows({ task: 'lambada', split: 'test', n: 1, shots: 0, requests: 1, truncated: 0, seconds: 1, examples_per_s: 1, metrics: [{ metric: 'perplexity', value: 123.456, stderr: NaN }] }) : []),
  ],
});

describe('results and comparison table', () => {
  it('labels checkpoints by run name', () => {
    expect(modelLabel('/x/checkpoints/ets-dacp/final')).toBe('ets-dacp/final');
    expect(modelLabel('/models/pythia-1b')).toBe('pythia-1b');
  });
  it('puts models side by side, one row per task/metric/shots, missing cells marked', () => {
    const t = compareTable([file('/c/dacp/final', 0.5), file('/c/tacp/final', 0.625, true)]);
    expect(t.split('\n')).toEqual([
      '| task | metric | shots | dacp/final | tacp/final |',
      '| --- | --- | --- | ---: | ---: |',
      '| fpb | acc | 5 | 0.5000 ± 0.0100 | 0.6250 ± 0.0100 |',
      '| lambada | perplexity | 0 | – | 123.46 |',
      '',
    ]);
  });
  it('stores a NaN stderr as null (JSON has no NaN)', () => {
    expect(file('m', 1, true).results[1]!.stderr).toBeNull();
  });
});
