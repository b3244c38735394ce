import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../../src/recipe/load.js';
import { recipeHash } from '../../src/recipe/resume.js';
import { toYaml } from '../../src/recipe/yaml.js';
import { FILE, base, load } from './fixture.js';

describe('toYaml', () => {
  it('writes a recipe that loads back to the same recipe', () => {
    const a = load(base('selection:\n  sampling: soft\n  temperature: 2\n', 'checkpoints/models/pythia-70m', 'ets-dacp-com'));
    const text = toYaml(a);
    expect(text).toMatch(/^# Resolved from .*under-test\.yaml/);
    expect(text).toContain(`# resume hash: ${recipeHash(a)}`);
    const b = parseRecipe(text, FILE).recipe;
    expect(b).toEqual(a);
  });
});
