import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { parseLimits, register } from '../../src/cli/eval.js';
import { UserError } from '../../src/util/errors.js';

function program(): Command {
  const p = new Command('cpt').exitOverride();
  register(p);
  return p;
}

const results = (model: string, acc: number) => ({
  kind: 'cpt-eval-results',
  version: 1,
  model,
  engine: 'native-cpu',
  tokenizer: 't',
  seed: 1234,
  limit: null,
  time: '2026-01-01T00:00:00Z',
  results: [{ task: 'fpb', metric: 'acc', value: acc, stderr: 0.02, n: 990, shots: 5, split: 'test', seconds: 1, examples_per_s: 1 }],
});

describe('cpt eval CLI', () => {
  it('--compare writes the markdown table atomically to --out', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-eval-cli-'));
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    writeFileSync(a, JSON.stringify(results('/c/dacp/final', 0.61)));
    writeFileSync(b, JSON.stringify(results('/c/ets-dacp/final', 0.64)));
    const out = path.join(dir, 'table.md');
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program().parseAsync(['node', 'cpt', 'eval', '--compare', a, b, '--out', out]);
    } finally {
      write.mockRestore();
    }
    const md = readFileSync(out, 'utf8');
    expect(md).toContain('| task | metric | shots | dacp/final | ets-dacp/final |');
    expect(md).toContain('| fpb | acc | 5 | 0.6100 ± 0.0200 | 0.6400 ± 0.0200 |');
  });

  it('refuses bad arguments with a UserError before loading any model', async () => {
    await expect(program().parseAsync(['node', 'cpt', 'eval', '--tasks', 'fpb'])).rejects.toThrow(/--model DIR is required/);
    await expect(program().parseAsync(['node', 'cpt', 'eval', '--model', 'x', '--tasks', 'fpb', '--limit', '0'])).rejects.toThrow(/--limit: expected an integer >= 1/);
    await expect(program().parseAsync(['node', 'cpt', 'eval', '--model', 'x', '--tasks', 'lambada', '--shots', '5'])).rejects.toThrow(/lambada has no few-shot split/);
    await expect(program().parseAsync(['node', 'cpt', 'eval', '--compare', '/nonexistent.json'])).rejects.toBeInstanceOf(UserError);
    await expect(program().parseAsync(['node', 'cpt', 'eval', '--model', 'x', '--tasks', 'fpb,ner', '--limit', '100,nre=30'])).rejects.toThrow(/--limit: nre is not one of the tasks \(fpb, ner\)/);
  });

  it('--limit takes a default and per-task overrides', () => {
    const tasks = ['fpb', 'ner', 'arc_easy'];
    const a = parseLimits('100,ner=30', tasks);
    expect(tasks.map(a)).toEqual([100, 30, 100]);
    const b = parseLimits('ner=5', tasks);
    expect(tasks.map(b)).toEqual([undefined, 5, undefined]);
    expect(tasks.map(parseLimits(undefined, tasks))).toEqual([undefined, undefined, undefined]);
    expect(() => parseLimits('ner=0', tasks)).toThrow(/--limit: expected an integer >= 1, got "0"/);
  });
});
