import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkInputs, requireInputs } from '../../src/recipe/inputs.js';
import { parseRecipe } from '../../src/recipe/load.js';
import { UserError } from '../../src/util/errors.js';
import { dataDir } from '../../src/util/paths.js';
import { FILE, base, load } from './fixture.js';

describe('inputs', () => {
  it('a missing model directory loads, and is refused where it is needed, with its line', () => {
    const r = load(base('', 'checkpoints/models/pythia-1b-not-downloaded'));
    expect(checkInputs(r, ['corpus', 'pile_test', 'tokenizer'])).toEqual([]);
    expect(() => requireInputs(r, ['model'])).toThrow(UserError);
    expect(() => requireInputs(r, ['model'])).toThrow(/^recipes\/under-test\.yaml:11 model\.init: .*pythia-1b-not-downloaded not found/);
  });

  it('missing data inputs are listed together', () => {
    const r = parseRecipe(base(), FILE, { dataDir: '/nonexistent-kit' }).recipe;
    const missing = checkInputs(r, ['corpus', 'pile_test', 'tokenizer']);
    expect(missing).toHaveLength(3);
    expect(missing[0]).toMatch(/^recipes\/under-test\.yaml:4 data\.corpus\[0\]\.path: \/nonexistent-kit\/corpus\/fin\/sec10k_2023 not found$/);
    expect(() => requireInputs(r, ['corpus', 'pile_test', 'tokenizer'])).toThrow(/^3 inputs missing:\n/);
  });
});
