/**
 * The metric registry: a metric declared once (a MetricDef, registered) is accepted by the recipe,
 * scored into its own cached table, ranks the selection and gets its section in the report.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { runSelection } from '../../src/select/index.js';
import { readScores } from '../../src/select/score-file.js';
import { etaMetricNames, registerMetric } from '../../src/select/metrics/registry.js';
import type { MetricDef } from '../../src/select/metrics/metric.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Tokens per character: a metric no built-in scorer computes, from the cached ids and the text. */
const density: MetricDef = {
  name: 'token_density',
  label: 'tokens per character',
  settings: () => ({ v: 1 }),
  scorer: async () => ({ score: async (texts, tokens) => Float64Array.from(texts, (t, i) => (t.length ? tokens[i].length / t.length : NaN)) }),
};

describe('metric registry', { timeout: 120_000 }, () => {
  it('a metric added through the registry alone ranks a selection and appears in the report', async () => {
    const unregister = registerMetric(density);
    try {
      const t = await writeTinyRecipe({ name: 'dense', method: 'eta-dacp', overrides: { selection: { metric: 'token_density', sampling: 'hard', budget: 0.2 } } });
      dirs.push(t.dir);
      const r = await loadRecipe(t.file);
      const res = await runSelection(r);
      const s = await readScores(res.scores!);
      expect(Object.keys(s.scores)).toEqual(['token_density']);
      expect(path.basename(path.dirname(res.scores!))).toMatch(/^token_density-/);
      const col = s.scores.token_density;
      // Hard sampling by the new column: nothing left out scores above the lowest chosen.
      const chosen = new Set(readFileSync(res.ids, 'utf8').split('\n').filter(Boolean));
      expect(chosen.size).toBe(res.record.selection.selected_docs);
      let minIn = Infinity, maxOut = -Infinity;
      s.ids.forEach((id, i) => (chosen.has(id) ? (minIn = Math.min(minIn, col[i])) : (maxOut = Math.max(maxOut, col[i]))));
      expect(minIn).toBeGreaterThanOrEqual(maxOut);
      expect(res.record.selection.metrics).toEqual(['token_density']);
      const report = readFileSync(res.report!, 'utf8');
      expect(report).toMatch(/\| token_density \| selected \|/);
      expect(report).toContain('![token_density](hist-token_density.svg)');
      expect(readFileSync(path.join(r.run_dir, 'selection', 'hist-token_density.svg'), 'utf8')).toContain('tokens per character');
    } finally {
      unregister();
    }
    // Gone from the registry: the recipe names an unknown metric again, in one line naming the key.
    const t = await writeTinyRecipe({ name: 'gone', method: 'eta-dacp', overrides: { selection: { metric: 'token_density' } } });
    dirs.push(t.dir);
    await expect(loadRecipe(t.file)).rejects.toThrow(`selection.metric: expected ${etaMetricNames().join(' or ')}, got "token_density"`);
    expect(existsSync(path.join(t.dir, 'runs'))).toBe(false);
  });

  it('refuses a name that would clash with the table columns or an existing metric', () => {
    expect(() => registerMetric({ ...density, name: 'tokens' })).toThrow(/metric name "tokens"/);
    expect(() => registerMetric({ ...density, name: 'entropy' })).toThrow(/registered already/);
  });
});
