import { describe, expect, it } from 'vitest';
import { encodePair, scoreRequests, type EncodedRequest } from '../../src/eval/loglik.js';
import { limitDocs, runTask } from '../../src/eval/run.js';
import { loadTaskConfig } from '../../src/eval/config.js';
import { loadTask } from '../../src/data/tasks/index.js';
import { dataDir } from '../../src/util/paths.js';
import { fakeEngine, wordTokenizer, VOCAB } from './fakes.js';

const tok = wordTokenizer;

/** Reference: one request at a time, summing log-probs by hand from full logits. */
function reference(r: EncodedRequest, maxLen = Infinity): { ll: number; greedy: boolean } {
  const e = fakeEngine();
  let full = Int32Array.from([...r.ctx, ...r.cont]);
  if (full.length > maxLen) full = full.slice(full.length - maxLen);
  const n = Math.min(r.cont.length, full.length - 1);
  const lg = e.logits(full, 1, full.length);
  let ll = 0;
  let greedy = true;
  for (let t = full.length - n; t < full.length; t++) {
    const row = Array.from(lg.subarray((t - 1) * VOCAB, t * VOCAB));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    ll += row[full[t]!]! - lse;
    if (row.indexOf(max) !== full[t]) greedy = false;
  }
  return { ll, greedy };
}

describe('encodePair (lm-eval _encode_pair)', () => {
  it('moves the trailing space, encodes the whole string and splits at the context token count', () => {
    const e = encodePair(tok, { context: 'Text: up\nAnswer: ', continuation: 'positive' });
    expect(Array.from(e.ctx)).toEqual(Array.from(tok.encode('Text: up\nAnswer:')));
    expect(Array.from(e.cont)).toEqual([tok.idOf(' positive')]);
  });
  it('uses EOS as the context of an empty prompt', () => {
    const e = encodePair(tok, { context: '', continuation: 'hello world' });
    expect(Array.from(e.ctx)).toEqual([tok.eosId]);
    expect(e.cont.length).toBe(2);
  });
});

describe('batched scoring', () => {
  const texts = ['a b c d e f g h', 'x', 'one two', 'the quick brown fox jumps over', 'k l m n', 'p'];
  const reqs = texts.flatMap((c, i) => [encodePair(tok, { context: c, continuation: ' yes' }), encodePair(tok, { context: c, continuation: ` no ${'z '.repeat(i)}end` })]);

  it('gives the log-likelihoods of one-at-a-time scoring, in input order, whatever the batch', () => {
    const want = reqs.map((r) => reference(r).ll);
    for (const batch of [1, 3, 5, 64]) {
      const e = fakeEngine();
      const got = scoreRequests(e, reqs, { batch, maxLen: 2048 });
      got.forEach((g, i) => expect(g.ll).toBeCloseTo(want[i]!, 4));
      // sorted longest first: each call's width is its first row's length, non-increasing
      const widths = e.calls.map((c) => c[1]!);
      expect([...widths].sort((a, b) => b - a)).toEqual(widths);
      expect(e.calls.reduce((s, c) => s + c[0]!, 0)).toBe(reqs.length);
    }
  });

  it('one forward per shared context gives the same log-likelihoods as one row per choice', () => {
    const choices = [' negative', ' neutral', ' positive', ' two words'];
    const shared = texts.flatMap((c) => choices.map((k) => encodePair(tok, { context: c, continuation: k })));
    const want = shared.map((r) => reference(r));
    const e = fakeEngine();
    const got = scoreRequests(e, shared, { batch: 4, maxLen: 2048, greedy: true });
    got.forEach((g, i) => {
      expect(g.ll).toBeCloseTo(want[i]!.ll, 4);
      expect(g.greedy).toBe(want[i]!.greedy);
    });
    // 6 contexts shared by 3 one-token choices + 6 two-token rows, 4 per call
    expect(e.calls.reduce((s, c) => s + c[0]!, 0)).toBe(12);
    const plain = scoreRequests(fakeEngine(), shared, { batch: 4, maxLen: 2048, shareContext: false });
    plain.forEach((g, i) => expect(g.ll).toBeCloseTo(want[i]!.ll, 4));
    // truncation agrees too
    const t1 = scoreRequests(fakeEngine(), shared, { batch: 4, maxLen: 4 });
    const t2 = scoreRequests(fakeEngine(), shared, { batch: 4, maxLen: 4, shareContext: false });
    t1.forEach((g, i) => expect(g.ll).toBeCloseTo(t2[i]!.ll, 4));
  });

  it('left-truncates rows to maxLen, keeping the continuation', () => {
    const r = encodePair(tok, { context: 'w '.repeat(40).trim(), continuation: ' a b c' });
    const [got] = scoreRequests(fakeEngine(), [r], { batch: 4, maxLen: 10 });
    expect(got!.tokens).toBe(3);
    expect(got!.ll).toBeCloseTo(reference(r, 10).ll, 4);
    expect(got!.ll).not.toBeCloseTo(reference(r).ll, 4); // the dropped prefix mattered
  });

  it('greedy mode matches argmax at every continuation position and the same log-likelihoods', () => {
    const got = scoreRequests(fakeEngine(), reqs, { batch: 4, maxLen: 2048, greedy: true });
    got.forEach((g, i) => {
      const ref = reference(reqs[i]!);
      expect(g.ll).toBeCloseTo(ref.ll, 4);
      expect(g.greedy).toBe(ref.greedy);
    });
    // an engine that always predicts token 5 is greedy exactly on continuations of 5s
    const e = fakeEngine({ favour: 5 });
    const [yes, no] = scoreRequests(e, [{ ctx: Int32Array.of(1, 2), cont: Int32Array.of(5, 5) }, { ctx: Int32Array.of(1, 2), cont: Int32Array.of(5, 6) }], { batch: 2, maxLen: 99, greedy: true });
    expect([yes!.greedy, no!.greedy]).toEqual([true, false]);
  });
});

describe('runTask end to end (fake engine)', () => {
  it('is independent of batch size and reproducible by seed', async () => {
    const cfg = await loadTaskConfig('fpb');
    const opts = { dataDir: dataDir(), shots: 2, limit: 25, seed: 1234 };
    const a = await runTask(cfg, fakeEngine(), tok, { ...opts, batch: 1 });
    const b = await runTask(cfg, fakeEngine(), tok, { ...opts, batch: 16 });
    expect(a.n).toBe(25);
    expect(a.requests).toBe(75);
    expect(b.metrics).toEqual(a.metrics);
    expect(a.metrics.map((m) => m.metric)).toEqual(['acc', 'acc_norm', 'f1_weighted', 'gold_logprob', 'gold_logprob_norm', 'margin', 'margin_norm']);
    const g = a.metrics.find((m) => m.metric === 'gold_logprob')!, mg = a.metrics.find((m) => m.metric === 'margin')!;
    expect(g.value).toBeLessThan(0);
    expect(Math.abs(mg.value)).toBeLessThanOrEqual(1);
    expect(g.stderr).toBeGreaterThan(0);
  });

  it('maps predictions to gold labels: an always-"positive" model scores the positive share', async () => {
    const cfg = await loadTaskConfig('fpb');
    const test = limitDocs((await loadTask('fpb', dataDir())).splits.test!, 60, false, 1); // what --limit 60 keeps
    const share = test.filter((d) => d.fields.label === 'positive').length / test.length;
    const r = await runTask(cfg, fakeEngine({ favour: tok.idOf(' positive') }), tok, { dataDir: dataDir(), shots: 0, limit: 60, seed: 1, batch: 8 });
    const acc = r.metrics.find((m) => m.metric === 'acc')!;
    expect(acc.value).toBeCloseTo(share, 12);
    expect(acc.stderr).toBeCloseTo(Math.sqrt((share * (1 - share)) / 59), 12);
    // weighted F1 of a constant prediction: only the positive label has F1 > 0
    const f1pos = (2 * share) / (1 + share);
    expect(r.metrics.find((m) => m.metric === 'f1_weighted')!.value).toBeCloseTo(f1pos * share, 12);
  });

  it('NER: an always-"person" model finds exactly the gold person spans among candidates', async () => {
    const cfg = await loadTaskConfig('ner');
    const r = await runTask(cfg, fakeEngine({ favour: tok.idOf(' person') }), tok, { dataDir: dataDir(), shots: 0, limit: 40, seed: 1, batch: 16 });
    const data = await loadTask('ner', dataDir());
    const cands = limitDocs(data.splits.test!, 40, true, 1); // what --limit 40 keeps: 40 whole sentences
    const groups = new Set(cands.map((d) => d.group!));
    expect(groups.size).toBe(40);
    const tp = cands.filter((d) => d.fields.label === 'person').length;
    const gold = data.entities!.test!.filter((g) => groups.has(g.group)).length;
    expect(r.metrics.find((m) => m.metric === 'entity_precision')!.value).toBeCloseTo(tp / cands.length, 12);
    expect(r.metrics.find((m) => m.metric === 'entity_recall')!.value).toBeCloseTo(tp / gold, 12);
  });

  it('LAMBADA runs greedy + perplexity; few-shot is refused where there is no train split', async () => {
    const cfg = await loadTaskConfig('lambada');
    const r = await runTask(cfg, fakeEngine(), tok, { dataDir: dataDir(), limit: 6, seed: 1, batch: 4 });
    expect(r.metrics.map((m) => m.metric)).toEqual(['acc', 'perplexity']);
    expect(r.metrics[1]!.value).toBeGreaterThan(1);
    await expect(runTask(cfg, fakeEngine(), tok, { dataDir: dataDir(), shots: 2, limit: 2, seed: 1, batch: 4 })).rejects.toThrow(/no few-shot split/);
  });
});
