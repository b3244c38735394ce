/**
 * `npm run reproduce` on a tiny study (base + DACP + ETS-DACP hard, tiny model on tfjs): a run
 * killed mid-training resumes from its checkpoint, finished runs and evaluations are skipped on
 * rerun, and the results table (base first), the stage-time ledger and the plot are written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';
import { ROOT } from '../../src/util/paths.js';
import { nativeStatus } from '../../src/engine/native/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function reproduce(dir: string, env: Record<string, string> = {}) {
  const args = ['--import', 'tsx', path.join(ROOT, 'scripts/reproduce.ts'), '--recipes', dir, '--out', path.join(dir, 'out'), '--eval-limit', '2'];
  return spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, timeout: 300_000, env: { ...process.env, ...env } });
}

describe('npm run reproduce', () => {
  it('resumes a killed run, skips finished work, writes table, ledger and plot', async () => {
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

    const first = reproduce(base.dir);
    expect(first.stderr).not.toMatch(/Error/);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('== base: training (resuming)');
    expect(first.stdout).toContain('== ets-dacp-hard: evaluating');
    const ledger = JSON.parse(readFileSync(path.join(out, 'timings.json'), 'utf8')) as Record<string, { train: number; eval: number }>;
    expect(Object.keys(ledger)).toEqual(['base', 'dacp', 'ets-dacp-hard']);
    for (const t of Object.values(ledger)) expect(t.train > 0 && t.eval > 0).toBe(true);
    const table = readFileSync(path.join(out, 'results.md'), 'utf8');
    const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| run'));
    expect(rows.map((r) => r.split(' | ')[0])).toEqual(['| base (general corpus)', '| dacp', '| ets-dacp-hard']);
    for (const r of rows) expect(r).toMatch(/\| \d+\.\d{3} \| \d+\.\d{3} \|/); // Fin-test and Pile-test losses
    expect(existsSync(path.join(out, 'plots', 'loss.png'))).toBe(true);

    const again = reproduce(base.dir);
    expect(again.status).toBe(0);
    for (const n of ['base', 'dacp', 'ets-dacp-hard']) {
      expect(again.stdout).toContain(`== ${n}: trained`);
      expect(again.stdout).toContain(`== ${n}: evaluated`);
    }
    expect(JSON.parse(readFileSync(path.join(out, 'timings.json'), 'utf8'))).toEqual(ledger);
    expect(readFileSync(path.join(out, 'results.md'), 'utf8').split('\n').filter((l) => l.startsWith('| '))).toEqual(table.split('\n').filter((l) => l.startsWith('| ')));
  }, 600_000);
});
