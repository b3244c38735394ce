import { describe, expect, it } from 'vitest';
import { lrAt, warmupSteps, type Schedule } from '../../src/train/schedule.js';
import { planTraining, RowOrder } from '../../src/train/plan.js';
import type { Recipe } from '../../src/recipe/types.js';
import { TrainSchema } from '../../src/train/recipe.js';

const s: Schedule = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110, kind: 'cosine' };

describe('lr schedule', () => {
  it('warms up linearly to the peak on the last warmup step', () => {
    expect(lrAt(0, s)).toBeCloseTo(1e-4, 12);
    expect(lrAt(4, s)).toBeCloseTo(5e-4, 12);
    expect(lrAt(9, s)).toBeCloseTo(1e-3, 12);
    for (let i = 1; i < 10; i++) expect(lrAt(i, s)).toBeGreaterThan(lrAt(i - 1, s));
  });
  it('decays by cosine from the peak to min_lr at the last step', () => {
    expect(lrAt(10, s)).toBeCloseTo(1e-3, 12);
    expect(lrAt(109, s)).toBeCloseTo(1e-4, 12);
    // halfway through the decay: the midpoint of peak and floor
    const mid = 10 + 99 / 2;
    expect(lrAt(mid, s)).toBeCloseTo((1e-3 + 1e-4) / 2, 12);
    for (let i = 11; i < 110; i++) {
      expect(lrAt(i, s)).toBeLessThan(lrAt(i - 1, s));
      expect(lrAt(i, s)).toBeGreaterThanOrEqual(1e-4 - 1e-15);
    }
  });
  it('holds the peak after warmup when constant', () => {
    const c = { ...s, kind: 'constant' as const };
    expect(lrAt(50, c)).toBe(1e-3);
    expect(lrAt(3, c)).toBeCloseTo(4e-4, 12);
  });
  it('warmup is a fraction of total steps, at least one step', () => {
    expect(warmupSteps(0.01, 400)).toBe(4);
    expect(warmupSteps(0.01, 20)).toBe(1);
    expect(warmupSteps(0, 20)).toBe(0);
    expect(lrAt(0, { ...s, warmupSteps: 0 })).toBeCloseTo(1e-3, 12);
  });
});

// The section's defaults, as a recipe that sets only these keys gets them.
const train = (o: Partial<Recipe['train']>): Recipe['train'] => ({
  ...TrainSchema.parse({}), lr: 1e-3, min_lr: 1e-4, batch_tokens: 1024, micro_batch: 4, seq_len: 64, seed: 1, ...o,
});

describe('training plan', () => {
  it('accumulates micro-batches up to the global batch and runs one epoch', () => {
    const p = planTraining(train({}), 100);
    expect(p.accum).toBe(4); // 1024 / (4 * 64)
    expect(p.rowsPerStep).toBe(16);
    expect(p.tokensPerStep).toBe(1024);
    expect(p.totalSteps).toBe(6); // floor(100 / 16)
  });
  it('is cut by epochs, max_tokens and max_steps', () => {
    expect(planTraining(train({ epochs: 2 }), 100).totalSteps).toBe(12);
    expect(planTraining(train({ max_tokens: 64 * 40 }), 100).totalSteps).toBe(2);
    expect(planTraining(train({ max_steps: 3 }), 100).totalSteps).toBe(3);
  });
  it('refuses data smaller than one global batch, naming the key', () => {
    expect(() => planTraining(train({}), 10)).toThrow(/train.batch_tokens/);
  });
});

describe('row order', () => {
  it('reads epoch 0 in file order and later epochs as seeded permutations', () => {
    const o = new RowOrder(50, 7);
    expect(Array.from({ length: 50 }, (_, i) => o.row(i))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const e1 = Array.from({ length: 50 }, (_, i) => o.row(50 + i));
    expect([...e1].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(e1).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    const again = new RowOrder(50, 7);
    expect(Array.from({ length: 50 }, (_, i) => again.row(50 + i))).toEqual(e1);
    const other = new RowOrder(50, 8);
    expect(Array.from({ length: 50 }, (_, i) => other.row(50 + i))).not.toEqual(e1);
  });
});
