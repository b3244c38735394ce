import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { parseLimits, register } from '../../src/cli/eval.js';
import type { ResultsFile } from '../../src/eval/results.js';
import { initWeights } from '../../src/model/init.js';
import { saveModel } from '../../src/model/load.js';
import { presetConfig } from '../../src/model/presets.js';
import { UserError } from '../../src/util/errors.js';
import { dataDir, ROOT } from '../../src/util/paths.js';
import { run } from '../helpers/run.js';

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

/** `cpt eval --compare` of results files (name → file contents) with --out; returns the markdown written. */
async function compareFiles(files: Record<string, unknown>): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-eval-cli-'));
  const paths = Object.entries(files).map(([name, r]) => {
    writeFileSync(path.join(dir, name), JSON.stringify(r));
    return path.join(dir, name);
  });
  const out = path.join(dir, 'table.md');
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await program().parseAsync(['node', 'cpt', 'eval', '--compare', ...paths, '--out', out]);
  } finally {
    write.mockRestore();
  }
  return readFileSync(out, 'utf8');
}

describe('cpt eval CLI', () => {
  it('--compare writes the markdown table atomically to --out', async () => {
    const md = await compareFiles({ 'a.json': results('/c/dacp/final', 0.61), 'b.json': results('/c/ets-dacp/final', 0.64) });
    expect(md).toContain('| task | metric | shots | dacp/final | ets-dacp/final |');
    expect(md).toContain('| fpb | acc | 5 | 0.6100 ± 0.0200 | 0.6400 ± 0.0200 |');
  });

  it('--compare labels two results of one model by file', async () => {
    const md = await compareFiles({ 'eval-5shot-full-seed1.json': results('/c/dacp/final', 0.61), 'eval-0shot-full-seed1.json': results('/c/dacp/final', 0.58) });
    expect(md).toContain('| task | metric | shots | dacp/final (eval-5shot-full-seed1.json) | dacp/final (eval-0shot-full-seed1.json) |');
  });

  it('results are named by their settings; a rerun continues the file, skipping finished tasks; a summary table ends the run', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-eval-cli-'));
    const c = { ...presetConfig('pythia-14m'), num_hidden_layers: 1, max_position_embeddings: 512 };
    const model = path.join(dir, 'model');
    await saveModel(model, c, initWeights(c, 3), { tokenizer: path.join(dataDir(), 'tokenizer/20B_tokenizer.json') });
    const cli = (...a: string[]) => run(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'eval', '--model', model, '--shots', '0', '--limit', '8', ...a]);
    const first = await cli('--tasks', 'fpb');
    expect(first.status, first.stderr).toBe(0);
    const file = path.join(model, 'eval-0shot-limit8-seed1234.json');
    expect(first.stderr).toContain(`→ ${file}`);
    expect(first.stderr).toContain('cpt eval: 8 test examples to score (fpb 8)');
    // an estimate before the run, from a timed warm-up, before any task's own progress
    expect(first.stderr).toMatch(/cpt eval: about .+ for the 8 examples and the task-test losses \(from a timed warm-up of each task\)\n(.*\n)*.*eval fpb/);
    expect(first.stdout).toMatch(/^\| task \| metric \| shots \| model \|$/m);
    expect(first.stdout).toMatch(/^\| fpb \| acc \| 0 \| \d\.\d{4} ± \d\.\d{4} \|$/m);
    const fpb = (JSON.parse(readFileSync(file, 'utf8')) as ResultsFile).results.filter((r) => r.task === 'fpb');
    const second = await cli('--tasks', 'fpb,headline');
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toContain(`continuing ${file}: fpb done already`);
    expect(second.stderr).toContain('8 test examples to score (headline 8)');
    expect(second.stderr).not.toMatch(/eval fpb/);
    const r = JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
    expect(r.done).toEqual(['fpb', 'headline']);
    expect(r.results.filter((x) => x.task === 'fpb')).toEqual(fpb); // kept, not rerun
    // Other settings: their own file; the first is untouched.
    expect((await cli('--tasks', 'fpb', '--seed', '7')).status).toBe(0);
    expect(readFileSync(path.join(model, 'eval-0shot-limit8-seed7.json'), 'utf8')).toContain('"seed": 7');
    expect((JSON.parse(readFileSync(file, 'utf8')) as ResultsFile).done).toEqual(['fpb', 'headline']);
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
