import { describe, expect, it } from 'vitest';
import { diffResumeKeys, formatChanges, recipeHash, resumeKeys } from '../../src/recipe/resume.js';
import { base, load } from './fixture.js';

describe('resume keys', () => {
  it('change with model, data, selection, batch shape and seed; not with lr or monitoring', () => {
    const a = load(base());
    expect(recipeHash(load(base()))).toBe(recipeHash(a));
    for (const same of ['monitor:\n  every: 3\n', 'checkpoint:\n  keep: 9\n', 'engine:\n  kind: tfjs\n'])
      expect(diffResumeKeys(resumeKeys(a), load(base(same)))).toEqual([]);
    expect(diffResumeKeys(resumeKeys(a), load(base().replace('max_tokens: 40960', 'max_tokens: 81920\n  lr: 0.0005')))).toEqual([]);
    const changes = diffResumeKeys(resumeKeys(a), load(base().replace('seq_len: 128', 'seq_len: 64').replace('pythia-14m', 'pythia-70m') + 'selection:\n  budget: 0.2\n'));
    expect(changes.map((c) => c.key)).toEqual(['model.init', 'selection.budget', 'train.seq_len']);
    expect(formatChanges(changes)).toContain('  train.seq_len: 128 → 64');
    expect(recipeHash(load(base('selection:\n  seed: 5\n')))).not.toBe(recipeHash(a));
  });
});
