import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramCount } from '../../src/model/config.js';
import { presetConfig } from '../../src/model/presets.js';
import { ROOT } from '../../src/util/paths.js';
import { base } from './fixture.js';

describe('cpt inspect', () => {
  it('prints the resolved recipe and the estimates, and --json parses', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-inspect-'));
    const file = path.join(dir, 'r.yaml');
    writeFileSync(file, base('', 'checkpoints/models/pythia-1b-absent'));
    const cli = path.join(ROOT, 'src', 'cli', 'main.ts');
    const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
    const json = JSON.parse(execFileSync(tsx, [cli, 'inspect', '--json', file], { encoding: 'utf8' }));
    expect(json.recipe.train.lr).toBe(3e-4);
    expect(json.missing).toHaveLength(1);
    expect(json.estimates.params.total).toBe(paramCount(presetConfig('pythia-1b')));
    const text = execFileSync(tsx, [cli, 'inspect', file], { encoding: 'utf8' });
    expect(text).toContain('beta2: 0.95');
    expect(text).toMatch(/^time: .* per billion tokens/m);
    expect(text).not.toContain('# Adam beta2.');
    // --explain: the resolved values under the comments the schema generates
    const explained = execFileSync(tsx, [cli, 'inspect', '--explain', file], { encoding: 'utf8' });
    expect(explained).toContain('  # Adam beta2. (type: float in [0, 1), default: 0.95)\n  beta2: 0.95\n');
    expect(explained).toMatch(/# Peak learning rate\. \(type: float > 0, default: Pythia's for the model size\)\n  lr: 0\.0003\n/);
    let err = '';
    try {
      writeFileSync(file, base('  lrr: 1\n'));
      execFileSync(tsx, [cli, 'inspect', file], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = String((e as { stderr: string }).stderr);
    }
    expect(err.trim()).toBe(`cpt: ${file}:17 train.lrr: unknown key (did you mean "lr"?)`);
  }, 60_000);
});

describe('cpt inspect on a path that is neither (fault sweep B53)', () => {
  it('names both things it looked for, in one line', () => {
    const missing = path.join(mkdtempSync(path.join(os.tmpdir(), 'cpt-inspect-')), 'data', 'train_text_document');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'inspect', missing], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`cpt: ${missing}: no such recipe file, and no Megatron dataset ${missing}.idx`]);
  });
});
