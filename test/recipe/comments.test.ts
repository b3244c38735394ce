// Recipe comments come from the schema (src/recipe/comments.ts): every shipped recipe's comments
// are exactly what the schema says, and every key of the schema says something.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyComment, keyTable, withGeneratedComments } from '../../src/recipe/comments.js';
import { keysAt } from '../../src/recipe/schema.js';
import { ROOT } from '../../src/util/paths.js';
import { KEY_TABLE, shippedRecipes } from '../../scripts/recipe-comments.js';

describe('recipe comments', () => {
  it('every shipped recipe carries exactly the generated comments (else: npm run recipes:comments)', () => {
    const recipes = shippedRecipes();
    expect(recipes.length).toBeGreaterThanOrEqual(30);
    const stale = recipes.filter((f) => withGeneratedComments(readFileSync(f, 'utf8')) !== readFileSync(f, 'utf8')).map((f) => path.relative(ROOT, f));
    expect(stale).toEqual([]);
  });

  it('docs/recipe-keys.md is the table the schema generates (else: npm run recipes:comments), one row per key', () => {
    expect(readFileSync(KEY_TABLE, 'utf8')).toBe(keyTable());
    const walk = (at: string[]): string[] => keysAt(at).flatMap((k) => (keysAt([...at, k]).length ? walk([...at, k]) : [[...at, k].join('.')]));
    const rows = keyTable().split('\n').filter((l) => l.startsWith('| `')).map((l) => l.split('`')[1]);
    expect([...rows].sort()).toEqual(walk([]).sort());
    expect(keyTable()).toContain('| `train.warmup` | float in [0, 1) | 0.01 | Warmup as a fraction of total steps. |');
  });

  it('every key of the schema is documented, with its type and default', () => {
    const walk = (at: string[]): string[] => keysAt(at).flatMap((k) => [[...at, k].join('.'), ...walk([...at, k])]);
    const keys = walk([]);
    expect(keys.length).toBeGreaterThan(45);
    expect(keys.filter((k) => !keyComment(k.split('.')))).toEqual([]);
    expect(keyComment(['train', 'warmup'])!.join(' ')).toBe('Warmup as a fraction of total steps. (type: float in [0, 1), default: 0.01)');
    expect(keyComment(['method'])!.join(' ')).toBe('Training method. (type: dacp | tacp | ets-dacp | eta-dacp | ets-dacp-com, required)');
    expect(keyComment(['monitor', 'task_test_tokens'])!.join(' ')).toMatch(/\(type: int, default: 0\)$/);
  });

  it('a drifted comment is regenerated; notes apart from a key, example keys and values stay as written', () => {
    const text = [
      '# header: kept',
      '',
      'train:',
      '  # Warmup, default 0.5 (wrong)',
      '  warmup: 5.0e-2',
      '  # A note of this recipe, apart from the key.',
      '',
      '  # max_steps: 1000',
      '  seed: 7',
    ].join('\n');
    expect(withGeneratedComments(text).split('\n')).toEqual([
      '# header: kept',
      '',
      "# Optimiser and schedule: Pythia's own (AdamW, cosine to 10% with 1% warmup) unless noted.",
      'train:',
      '  # Warmup as a fraction of total steps. (type: float in [0, 1), default: 0.01)',
      '  warmup: 5.0e-2',
      '  # A note of this recipe, apart from the key.',
      '',
      '  # Stop after this many optimizer steps. (type: int, default: none)',
      '  # max_steps: 1000',
      '  # Seed of init, data order and sampling in training. (type: int, default: 1234)',
      '  seed: 7',
    ]);
    expect(withGeneratedComments(withGeneratedComments(text))).toBe(withGeneratedComments(text));
  });
});
