/**
 * cpt as a bundle (scripts/bundle-cli.ts): the CLI runs from dist/cpt with no node_modules in
 * reach, finds the addon and the CUDA library where a checkout keeps them, and trains with
 * engine.kind: cuda (here on the simulator): what verify.sh runs on a GPU machine without npm.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADDON_PATH, CUDA_SIM_LIB_PATH } from '../../src/engine/native/index.js';
import { ROOT } from '../../src/util/paths.js';
import { bundleCli } from '../../scripts/bundle-cli.js';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';
import { run, simMissing } from './sim.js';

describe('the bundled CLI', () => {
  it('trains a tiny recipe on the cuda engine from a directory with no node_modules', { timeout: 120_000 }, async () => {
    expect(simMissing()).toBeUndefined();
    const root = mkdtempSync(path.join(os.tmpdir(), 'cpt-bundle-'));
    await bundleCli(path.join(root, 'dist', 'cpt'));
    const size = readdirSync(path.join(root, 'dist', 'cpt')).reduce((s, f) => s + statSync(path.join(root, 'dist', 'cpt', f)).size, 0);
    expect(size).toBeLessThan(20 * 2 ** 20);
    for (const f of [ADDON_PATH, CUDA_SIM_LIB_PATH]) {
      const to = path.join(root, path.relative(ROOT, f));
      mkdirSync(path.dirname(to), { recursive: true });
      copyFileSync(f, to);
    }
    const r = await writeTinyRecipe({ name: 'bundled', overrides: { train: { max_steps: 3 }, monitor: { every: 3 }, checkpoint: { every: 3 }, engine: { kind: 'cuda', precision: 'fp32' } } });
    // Only PATH and HOME from this process: no NODE_PATH, no tsx.
    const env = { PATH: process.env.PATH ?? '', HOME: root, CPT_CUDA_SIM: '1' };
    const t = await run('env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, path.join(root, 'dist', 'cpt', 'cpt.js'), 'train', r.file], { cwd: root });
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/engine +cuda on cuda-sim/);
    expect(t.stdout).toMatch(/^step 3\/3 \| loss \d/m);
  });
});
