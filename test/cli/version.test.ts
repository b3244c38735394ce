import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../src/util/paths.js';

it('cpt --version prints the package version', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), '--version'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
});
