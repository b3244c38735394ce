/**
 * The scoring machinery through a real engine: the golden tiny GPT-NeoX on the tfjs engine.
 * Batched, padded, length-sorted scoring must equal one-request-at-a-time scoring.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/index.js';
import { loadModel } from '../../src/model/load.js';
import { ROOT } from '../../src/util/paths.js';
import { encodePair, scoreRequests } from '../../src/eval/loglik.js';
import { wordTokenizer as tok } from './fakes.js';

const tiny = path.join(ROOT, '..', 'shared', 'golden', 'neox-tiny');

describe('scoring through the tfjs engine (golden tiny model)', () => {
  it('batched + padded log-likelihoods equal unbatched ones; greedy agrees with tokenLogprobs', async () => {
    const m = await loadModel(tiny);
    const engine = await createEngine('tfjs', m.config);
    engine.loadWeights(m.weights);
    try {
      const reqs = ['the cat sat on the mat', 'a', 'profits rose sharply in the third quarter of the year', 'x y'].flatMap((c) =>
        [' yes', ' no way', ' maybe so then'].map((k) => encodePair(tok, { context: c, continuation: k })),
      );
      const one = reqs.map((r) => scoreRequests(engine, [r], { batch: 1, maxLen: 64 })[0]!.ll);
      // contexts shared by one-token choices: one forward of the context
      const mc = ['revenue fell', 'the board met today'].flatMap((c) => [' up', ' down', ' flat'].map((k) => encodePair(tok, { context: c, continuation: k })));
      const sharedLl = scoreRequests(engine, mc, { batch: 4, maxLen: 64 }).map((r) => r.ll);
      const plainLl = scoreRequests(engine, mc, { batch: 1, maxLen: 64, shareContext: false }).map((r) => r.ll);
      sharedLl.forEach((x, i) => expect(x).toBeCloseTo(plainLl[i]!, 4));
      const batched = scoreRequests(engine, reqs, { batch: 5, maxLen: 64 });
      batched.forEach((b, i) => expect(b.ll).toBeCloseTo(one[i]!, 4));
      const greedy = scoreRequests(engine, reqs, { batch: 3, maxLen: 64, greedy: true });
      greedy.forEach((g, i) => expect(g.ll).toBeCloseTo(one[i]!, 3));
      expect(one.every((x) => x < 0 && Number.isFinite(x))).toBe(true);
    } finally {
      engine.dispose();
    }
  });
});
