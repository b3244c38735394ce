import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fnv1a64, hashUnit, isHeldOut, prepareCorpus, readDocs, shuffle } from '../../src/data/index.js';
import { FIN_SPECS } from './kit.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-split-'));
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function heldOut(dir: string, fraction: number): Promise<{ test: string[]; train: number }> {
  const test: string[] = [];
  let train = 0;
  for await (const b of readDocs(dir, { split: { fraction, part: 'test' } })) test.push(...b.map((d) => d.id));
  for await (const b of readDocs(dir, { split: { fraction, part: 'train' } })) train += b.length;
  return { test: test.sort(), train };
}

describe('held-out split', () => {
  it('FNV-1a 64 matches the reference vectors', () => {
    expect(fnv1a64('')).toBe(0xcbf29ce484222325n);
    expect(fnv1a64('a')).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64('foobar')).toBe(0x85944171f73967e8n);
    const u = hashUnit('reuters-1');
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThan(1);
  });

  it('is identical under shard reordering and record reordering', async () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    // Same documents, sources in the other order and different shard sizes.
    await prepareCorpus(FIN_SPECS, a, { shardMb: 4 });
    await prepareCorpus([...FIN_SPECS].reverse(), b, { shardMb: 32 });
    const fa = await heldOut(a, 0.01);
    const fb = await heldOut(b, 0.01);
    expect(fa.test).toEqual(fb.test);
    expect(fa.train).toBe(fb.train);
    const n = fa.test.length + fa.train;
    expect(n).toBe(19_191);
    // 1% of 19,191 ≈ 192; a binomial 5σ band is ±68.
    expect(Math.abs(fa.test.length - n * 0.01)).toBeLessThan(5 * Math.sqrt(n * 0.01));
    // Record order: the predicate depends on the id only.
    const ids: string[] = [];
    for await (const batch of readDocs(a)) ids.push(...batch.map((d) => d.id));
    const order = shuffle(ids.length, 7);
    const shuffled = Array.from(order, (i) => ids[i]);
    expect(shuffled.filter((id) => isHeldOut(id, 0.01)).sort()).toEqual(fa.test);
  }, 60_000);

  it('nests: a smaller fraction holds out a subset; the paper default is 0.1%', () => {
    const ids = Array.from({ length: 50_000 }, (_, i) => `doc-${i}`);
    const small = ids.filter((id) => isHeldOut(id, 0.001));
    const big = new Set(ids.filter((id) => isHeldOut(id, 0.01)));
    for (const id of small) expect(big.has(id)).toBe(true);
    expect(ids.filter((id) => isHeldOut(id)).length).toBe(small.length);
    expect(Math.abs(small.length - 50)).toBeLessThan(5 * Math.sqrt(50));
    expect(ids.filter((id) => isHeldOut(id, 0)).length).toBe(0);
    expect(ids.filter((id) => isHeldOut(id, 1)).length).toBe(ids.length);
  });
});
