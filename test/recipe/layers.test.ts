// The recipe layer sits below the stages: loading a recipe reaches a stage only through its
// section schema (<stage>/recipe.ts), and what those load is light: the registries the lists come
// from (metric definitions, whose scorers load when called; tasks; input formats; engine kinds)
// and Pythia's presets. Never a scorer, the tokenizer, an engine or a model. Checked on the static imports (type-only and lazy `import()` ones are
// not loaded with the module).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../src/util/paths.js';

const SRC = path.join(ROOT, 'src');

/** The src files a module loads, following static value imports. */
function closure(start: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^'";]*?from\s+'(\.[^']+)'|^import\s+'(\.[^']+)'/gm)) {
      visit(path.resolve(path.dirname(file), (m[1] ?? m[2]).replace(/\.js$/, '.ts')));
    }
  };
  visit(start);
  return seen;
}

const rel = (f: string) => path.relative(SRC, f);

describe('recipe layer', () => {
  it('loading a recipe loads no stage beyond its section schemas (no scorer, engine or tokenizer)', () => {
    const loaded = [...closure(path.join(SRC, 'recipe', 'index.ts'))].map(rel).sort();
    const stages = loaded.filter((f) => !/^(recipe|util)\//.test(f));
    // a stage's section, and the registries it takes its lists from (metrics, tasks, input formats, engine kinds)
    const registries = /^(\w+\/recipe\.ts|select\/metrics\/\w+\.ts|data\/(tasks|formats)\/[\w-]+\.ts|engine\/(registry|engine)\.ts|model\/presets\.ts)$/;
    expect(stages.filter((f) => !registries.test(f))).toEqual([]);
    for (const heavy of ['select/scorers.ts', 'select/index.ts', 'data/tokenizer.ts', 'engine/index.ts', 'engine/native/index.ts', 'model/load.ts']) expect(loaded).not.toContain(heavy);
    expect(loaded).toEqual(expect.arrayContaining(['select/recipe.ts', 'select/metrics/registry.ts', 'data/tasks/index.ts', 'data/formats/index.ts']));
    // and a stage's own modules only through its section: the recipe layer imports no other stage file
    const direct = [...closure(path.join(SRC, 'recipe', 'index.ts'))].filter((f) => rel(f).startsWith('recipe/'));
    for (const f of direct) {
      const deps = [...readFileSync(f, 'utf8').matchAll(/^(?:import|export)\s+(?!type\b)[^'";]*?from\s+'(\.[^']+)'/gm)].map((m) => rel(path.resolve(path.dirname(f), m[1].replace(/\.js$/, '.ts'))));
      expect(deps.filter((d) => !/^(recipe|util)\//.test(d) && !/^\w+\/recipe\.ts$/.test(d) && !['engine/registry.ts', 'model/presets.ts'].includes(d)), rel(f)).toEqual([]);
    }
  });

  it("a section schema loads only zod, recipe/keys and recipe/names, and its own stage's registry", () => {
    for (const stage of ['data', 'select', 'model', 'train', 'monitor', 'engine']) {
      const deps = [...closure(path.join(SRC, stage, 'recipe.ts'))].map(rel).filter((f) => f !== `${stage}/recipe.ts` && !/^(recipe\/(keys|names)|util\/(errors|paths))\.ts$/.test(f));
      expect(deps.filter((f) => !f.startsWith(`${stage}/`)), stage).toEqual([]);
    }
  });
});
