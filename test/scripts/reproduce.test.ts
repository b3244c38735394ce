/**
 * `npm run reproduce` on a tiny study (base + DACP + ETS-DACP hard with two seeds, tiny model): a
 * run killed mid-training resumes from its checkpoint, two jobs at once finish the rest, finished
 * runs and evaluations are skipped on rerun, and the tables (base first, mean ± std over seeds),
 * the stage-time ledger and both plots are written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';
import { ROOT } from '../../src/util/paths.js';
import { nativeStatus } from '../../src/engine/native/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function reproduce(dir: string, env: Record<string, string> = {}, extra: string[] = []) {
  const args = ['--import', 'tsx', path.join(ROOT, 'scripts/reproduce.ts'), '--recipes', dir, '--out', path.join(dir, 'out'), '--eval-limit', '2,ner=1', '--probe-limit', '30', ...extra];
  return spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, timeout: 300_000, env: { ...process.env, ...env } });
}

describe('npm run reproduce', () => {
  it('resumes a killed run, runs seeds two at a time, skips finished work, writes tables, ledger and plots', async () => {
    const engine = { kind: nativeStatus().ok ? 'native' : 'tfjs', threads: 1 }; // tfjs takes ~1 s a step even here
    const base = await writeTinyRecipe({ name: 'base', overrides: { train: { max_steps: 8 }, checkpoint: { every: 2 }, engine } });
    dirs.push(base.dir);
    const init = { model: { init: path.join(base.runDir, 'final'), base_recipe: base.file }, engine };
    await writeTinyRecipe({ name: 'dacp', dir: base.dir, overrides: init });
    await writeTinyRecipe({ name: 'ets-dacp-hard', method: 'ets-dacp', dir: base.dir, overrides: { ...init, selection: { budget: 0.5, sampling: 'hard' } } });
    const out = path.join(base.dir, 'out');

    // Killed after step 5 of the base: the study stops, the time spent is kept in the ledger.
    const killed = reproduce(base.dir, { CPT_FAILPOINT_KILL_AT_STEP: '5' });
    expect(killed.status).not.toBe(0);
    expect(JSON.parse(readFileSync(path.join(out, 'timings.json'), 'utf8')).base.train).toBeGreaterThan(0);

    const more = ['--seeds', '2', '--jobs', '2'];
    const first = reproduce(base.dir, {}, more);
    expect(first.stderr).not.toMatch(/Error/);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('== base: training (resuming)');
    expect(first.stdout).toContain('== ets-dacp-hard-seed2: evaluating');
    // Seed 2 of ETS-DACP: its own recipe, run directory and seeds; DACP and the base run once.
    const seeded = readFileSync(path.join(out, 'recipes', 'ets-dacp-hard-seed2.yaml'), 'utf8');
    expect(seeded).toMatch(/run_dir: .*ets-dacp-hard-seed2/);
    const orig = parse(readFileSync(path.join(base.dir, 'ets-dacp-hard.yaml'), 'utf8')) as { train: { seed: number }; selection: { seed?: number } };
    const next = parse(seeded) as typeof orig;
    expect(next.train.seed).toBe(orig.train.seed + 1000);
    expect(next.selection.seed).toBe((orig.selection.seed ?? 1234) + 1000);
    const ledger = JSON.parse(readFileSync(path.join(out, 'timings.json'), 'utf8')) as Record<string, { train: number; eval: number }>;
    expect(Object.keys(ledger).sort()).toEqual(['base', 'dacp', 'ets-dacp-hard', 'ets-dacp-hard-seed2']);
    for (const t of Object.values(ledger)) expect(t.train > 0 && t.eval > 0).toBe(true);
    const table = readFileSync(path.join(out, 'results.md'), 'utf8');
    const rows = (title: string) => table.split(`### ${title}`)[1]!.split('###')[0]!.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| run'));
    // run, seeds, and the precision each run trained in (read back from its checkpoint).
    expect(rows('Losses').map((r) => r.split(' | ').slice(0, 3))).toEqual([['| base (general corpus)', '1', 'fp32'], ['| dacp', '1', 'fp32'], ['| ets-dacp-hard', '2', 'fp32']]);
    for (const r of rows('Losses')) expect(r).toMatch(/\| \d+\.\d{3}( ± \d+\.\d{3})? \| \d+\.\d{3}( ± \d+\.\d{3})? \| \d+\.\d{3}/); // Fin-test, Pile-test, task-test
    expect(rows('Losses')[2]).toMatch(/\| \d+\.\d{3} ± \d+\.\d{3} \|/); // two seeds: mean ± std
    for (const r of rows('Tasks')) expect(r).toMatch(/^\| [^|]+ \| \d+\.\d/); // probe F1 measured
    for (const p of ['loss.png', 'tasks.png']) expect(existsSync(path.join(out, 'plots', p))).toBe(true);

    const again = reproduce(base.dir, {}, more);
    expect(again.status).toBe(0);
    for (const n of ['base', 'dacp', 'ets-dacp-hard', 'ets-dacp-hard-seed2']) {
      expect(again.stdout).toContain(`== ${n}: trained`);
      expect(again.stdout).toContain(`== ${n}: evaluated`);
    }
    expect(JSON.parse(readFileSync(path.join(out, 'timings.json'), 'utf8'))).toEqual(ledger);
    expect(readFileSync(path.join(out, 'results.md'), 'utf8').split('\n').filter((l) => l.startsWith('| '))).toEqual(table.split('\n').filter((l) => l.startsWith('| ')));
  }, 600_000);
});
