/**
 * Capacity on paper, from the CUDA engine's own allocations: `cpt inspect` runs one training step
 * and AdamW update of the recipe's shape through the simulator in plan mode (nothing executes, no
 * page is touched) and reports the peak of what the engine held.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../src/util/paths.js';
import { simMissing } from './sim.js';

const GiB = 2 ** 30;

function inspect(recipe: string, edit?: (yaml: string) => string): { peakBytes: number; fits: number[] } {
  let file = path.join(ROOT, 'recipes', recipe);
  if (edit) {
    file = path.join(mkdtempSync(path.join(os.tmpdir(), 'cpt-cap-')), recipe);
    writeFileSync(file, edit(readFileSync(path.join(ROOT, 'recipes', recipe), 'utf8')));
  }
  const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'inspect', file, '--json'], { cwd: ROOT, encoding: 'utf8' });
  return (JSON.parse(out) as { estimates: { gpuMemory: { peakBytes: number; fits: number[] } } }).estimates.gpuMemory;
}

describe('GPU memory counted from the engine\'s allocations', () => {
  it('the simulator build is there', () => expect(simMissing()).toBeUndefined());

  it('Pythia-1b at seq 2048, micro-batch 1, recompute: fits a 24 GB GPU', () => {
    const g = inspect('dacp-1b.yaml', (y) => y.replace(/recompute: false/, 'recompute: true'));
    expect(g.peakBytes + 0.5 * GiB).toBeLessThan(24 * GiB);
    expect(g.fits).toContain(24);
    // fp32 master weights, gradients and two moments alone are 16 bytes per parameter (1.01 B).
    expect(g.peakBytes).toBeGreaterThan(16 * 1.01e9);
  });

  it('recompute keeps less: the same step without it holds more', () => {
    const on = inspect('dacp-1b.yaml', (y) => y.replace(/recompute: false/, 'recompute: true')).peakBytes;
    const off = inspect('dacp-1b.yaml').peakBytes;
    expect(off).toBeGreaterThan(on);
  });

  it('Pythia-6.9b does not fit one 80 GB GPU, even with recompute', () => {
    const g = inspect('dacp-6.9b.yaml');
    expect(readFileSync(path.join(ROOT, 'recipes', 'dacp-6.9b.yaml'), 'utf8')).toMatch(/recompute: true/);
    expect(g.peakBytes).toBeGreaterThan(80 * GiB);
    expect(g.fits).not.toContain(80);
  });
});
