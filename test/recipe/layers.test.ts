// The recipe layer sits below the stages: loading a recipe reaches each stage's section schema
// (<stage>/recipe.ts, a leaf) and nothing else of the stages, so it never loads a scorer, the
// tokenizer or an engine. Checked on the static imports (type-only and lazy `import()` ones are
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
    // each stage contributes its section schema; model/ and engine/registry are what resolve asks of the model and the engine kinds
    expect(stages.filter((f) => !/^(data|select|model|train|monitor|engine)\/recipe\.ts$/.test(f))).toEqual(['engine/engine.ts', 'engine/registry.ts', 'model/presets.ts']);
    expect(loaded).toContain('select/recipe.ts');
    expect(loaded.filter((f) => f.startsWith('select/'))).toEqual(['select/recipe.ts']);
  });

  it('a section schema is a leaf: zod, recipe/keys, recipe/names and the engine registry only', () => {
    for (const stage of ['data', 'select', 'model', 'train', 'monitor', 'engine']) {
      const deps = [...closure(path.join(SRC, stage, 'recipe.ts'))].map(rel).filter((f) => f !== `${stage}/recipe.ts`).sort();
      expect(deps.filter((f) => !['recipe/keys.ts', 'recipe/names.ts', 'engine/registry.ts', 'engine/engine.ts', 'util/errors.ts'].includes(f)), stage).toEqual([]);
    }
  });
});
