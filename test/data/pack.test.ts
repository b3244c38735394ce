import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openPacked, packDocuments } from '../../src/data/index.js';
import { mulberry32 as rng } from '../../src/util/rng.js';
import { UserError } from '../../src/util/errors.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-pack-'));
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Docs with nonzero tokens that say which doc they come from: doc k = [k*base+1, k*base+2, ...]. */
function makeDocs(n: number, seed: number, base = 200): { id: string; ids: Int32Array }[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, k) => {
    const len = 1 + Math.floor(r() * 40);
    return { id: `d${k}`, ids: Int32Array.from({ length: len }, (_, i) => k * base + i + 1) };
  });
}

async function* stream<T>(xs: T[]): AsyncGenerator<T> {
  yield* xs;
}

describe('packDocuments / openPacked', () => {
  const docs = makeDocs(300, 1);
  const seqLen = 64;

  it('same seed → identical bytes; different seed → different order, same tokens', async () => {
    const a = await packDocuments({ docs: stream(docs), seqLen, seed: 5, out: path.join(tmp, 'a.json') });
    const b = await packDocuments({ docs: stream([docs]), seqLen, seed: 5, out: path.join(tmp, 'b.json') });
    const c = await packDocuments({ docs: stream(docs), seqLen, seed: 6, out: path.join(tmp, 'c.json') });
    const bytes = async (f: string) => fs.readFile(path.join(tmp, f));
    expect(Buffer.compare(await bytes('a.json.bin'), await bytes('b.json.bin'))).toBe(0);
    expect(a.sha256).toBe(b.sha256);
    expect(Buffer.compare(await bytes('a.json.bin'), await bytes('c.json.bin'))).not.toBe(0);

    const total = docs.reduce((s, d) => s + d.ids.length + 1, 0);
    expect(a.count).toBe(Math.floor(total / seqLen));
    expect(a.droppedTailTokens).toBe(total - a.count * seqLen);
    expect(a.dtype).toBe('uint16');
    expect((await bytes('a.json.bin')).length).toBe(a.count * seqLen * 2);

    // Same multiset of tokens up to the tail cut: compare the docs that lie wholly in the rows.
    const docsOf = (flat: Int32Array) => {
      const out: number[][] = [];
      let cur: number[] = [];
      for (const t of flat) {
        if (t === 0) {
          out.push(cur);
          cur = [];
        } else cur.push(t);
      }
      return out; // the incomplete last doc (no EOS yet) is left out
    };
    const pa = openPacked(path.join(tmp, 'a.json'));
    const pc = openPacked(path.join(tmp, 'c.json.bin'));
    const da = docsOf(pa.read(0, pa.count));
    const dc = docsOf(pc.read(0, pc.count));
    // Every segment between EOS tokens is exactly one whole document.
    const byFirst = new Map(docs.map((d) => [d.ids[0], Array.from(d.ids)]));
    for (const seg of [...da, ...dc]) expect(seg).toEqual(byFirst.get(seg[0]));
    expect(new Set(da.map((s) => s[0])).size).toBe(da.length); // no doc twice
    expect(da.map((s) => s[0])).not.toEqual(dc.map((s) => s[0])); // shuffled differently
    expect(da.length).toBeGreaterThan(docs.length - 5);
    pa.close();
    pc.close();
  });

  it('rows are exactly seqLen and random access agrees with a full read', async () => {
    await packDocuments({ docs: stream(docs), seqLen, seed: 5, out: path.join(tmp, 'r.json') });
    const p = openPacked(path.join(tmp, 'r.json'));
    expect(p.seqLen).toBe(seqLen);
    expect(p.tokens).toBe(p.count * seqLen);
    const all = p.read(0, p.count);
    expect(all.length).toBe(p.count * seqLen);
    const some = p.read(3, 2);
    expect(Array.from(some)).toEqual(Array.from(all.subarray(3 * seqLen, 5 * seqLen)));
    expect(() => p.read(p.count - 1, 2)).toThrow(RangeError);
    p.close();
  });

  it('switches to int32 for ids above 65535 and keeps EOS between docs', async () => {
    const big = makeDocs(50, 2, 100_000);
    const m = await packDocuments({ docs: stream(big), seqLen: 16, seed: 1, out: path.join(tmp, 'big.json') });
    expect(m.dtype).toBe('int32');
    const p = openPacked(path.join(tmp, 'big.json'));
    const flat = p.read(0, p.count);
    expect(Math.max(...flat)).toBeGreaterThan(65535);
    expect(flat.filter((t) => t === 0).length).toBeGreaterThan(40);
    p.close();
  });

  it('refuses bad seqLen and a truncated token file', async () => {
    await expect(packDocuments({ docs: stream(docs), seqLen: 1, seed: 0, out: path.join(tmp, 'x.json') })).rejects.toThrow(UserError);
    await packDocuments({ docs: stream(docs), seqLen, seed: 5, out: path.join(tmp, 't.json') });
    await fs.truncate(path.join(tmp, 't.json.bin'), 10);
    expect(() => openPacked(path.join(tmp, 't.json'))).toThrow(/10 bytes, expected/);
    expect(() => openPacked(path.join(tmp, 'none.json'))).toThrow(UserError);
  });
});
