import { describe, expect, it } from 'vitest';
import { heldOutLoss } from '../../src/monitor/heldout.js';
import type { Engine } from '../../src/engine/engine.js';

describe('held-out loss', () => {
  it('averages over exactly the first `rows` rows, weighting a short last batch by its rows', () => {
    const seq = 4;
    const rows = Array.from({ length: 10 }, (_, r) => Int32Array.from({ length: seq }, () => r));
    const seen: number[] = [];
    // Per-row "loss" = the row's index: the mean over rows 0..6 must be 3.
    const engine = {
      evalLoss(ids: Int32Array, batch: number, s: number) {
        expect(s).toBe(seq);
        let sum = 0;
        for (let b = 0; b < batch; b++) {
          seen.push(ids[b * seq]);
          sum += ids[b * seq];
        }
        return sum / batch;
      },
    } as unknown as Engine;
    const ds = { seqLen: seq, count: 10, read: (start: number, n: number) => {
      const out = new Int32Array(n * seq);
      for (let i = 0; i < n; i++) out.set(rows[start + i], i * seq);
      return out;
    } };
    expect(heldOutLoss(engine, ds, 7, 3)).toBeCloseTo(3, 12);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
    seen.length = 0;
    expect(heldOutLoss(engine, ds, 50, 4)).toBeCloseTo(4.5, 12); // capped at the set's 10 rows
    expect(seen).toHaveLength(10);
  });
});
