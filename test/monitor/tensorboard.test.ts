// The monitor's TensorBoard event file, read back by TensorBoard's own reader (EventAccumulator),
// through a resume that drops the steps after its checkpoint.
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsLog, type MetricRecord } from '../../src/monitor/metrics.js';
import { hasPeer, runPeer } from '../helpers/peer.js';

const rec = (step: number, loss: number, fin: number | null = null): MetricRecord => ({
  step, tokens: step * 1024, lr: step ? 1e-3 : null, loss: step ? loss : null, grad_norm: step ? 0.5 : null, fin_test: fin, pile_test: fin === null ? null : fin + 1, tok_s: step ? 1000 : null, time: step,
});

describe('TensorBoard event file', () => {
  it('TensorBoard reads every scalar at its step; a resume leaves no duplicate or stale step', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-tb-'));
    const tb = path.join(dir, 'tensorboard');
    const log = new MetricsLog(path.join(dir, 'metrics.jsonl'), { tensorboard: tb });
    log.reset();
    log.append(rec(0, 0, 7.5));
    for (let s = 1; s <= 5; s++) log.append(rec(s, 10 - s, s === 4 ? 6.25 : null));
    log.truncateTo(3); // resumed from the step-3 checkpoint: steps 4 and 5 are redone
    for (let s = 4; s <= 6; s++) log.append(rec(s, 20 - s, s === 6 ? 5.5 : null));
    expect(readdirSync(tb)).toEqual([expect.stringMatching(/^events\.out\.tfevents\.\d+\..*\.cpt$/)]);
    if (!hasPeer('tensorboard')) return;
    const got = runPeer<Record<string, [number, number][]>>(`
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))`, tb);
    expect(got['train/loss']).toEqual([[1, 9], [2, 8], [3, 7], [4, 16], [5, 15], [6, 14]]);
    expect(got['eval/fin_test_loss']).toEqual([[0, 7.5], [6, 5.5]]);
    expect(got['eval/pile_test_loss']).toEqual([[0, 8.5], [6, 6.5]]);
    expect(got['train/lr'].map(([s, v]) => [s, +v.toPrecision(6)])).toEqual([1, 2, 3, 4, 5, 6].map((s) => [s, 0.001]));
    expect(got['train/tokens'].at(-1)).toEqual([6, 6144]);
  });
});
