import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCorpus, readDocs, readManifest, readSpec, type Doc, type PrepareResult } from '../../src/data/index.js';
import { FIN_SPECS, GENERAL_SPECS } from './kit.js';

let tmp: string;
let fin: PrepareResult;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-shards-'));
  fin = await prepareCorpus(FIN_SPECS, path.join(tmp, 'fin'), { shardMb: 8 });
}, 120_000);
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function all(dir: string): Promise<Doc[]> {
  const out: Doc[] = [];
  for await (const b of readDocs(dir)) out.push(...b);
  return out;
}

describe('prepareCorpus on the kit', () => {
  it('financial corpus: Reuters bodies and 10-K sections, counts as in SOURCES.md', async () => {
    const by = Object.fromEntries(fin.sources.map((s) => [s.name, s]));
    // 21,578 stories, 19,043 with a <BODY>; the rest are counted, not silently lost.
    expect(by.reuters.docs).toBe(19_043);
    expect(by.reuters.skipped).toEqual({ no_body: 21_578 - 19_043 });
    expect(by.reuters.files).toBe(22);
    // 37 files × {item1, item1a, item7, item7a}, all present and non-empty.
    expect(by.sec10k.docs).toBe(37 * 4);
    expect(fin.totals.docs).toBe(19_043 + 148);
    expect(fin.skipped).toEqual({ no_body: 2535 });
    expect(fin.shards.length).toBeGreaterThan(1); // ~30 MB of text at 8 MB per shard
    expect(fin.shards.reduce((a, s) => a + s.docs, 0)).toBe(fin.totals.docs);
    for (const s of fin.shards) expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('round trip: shards hold exactly what the readers produced, in order', async () => {
    const direct: Doc[] = [];
    for (const s of FIN_SPECS) for await (const d of readSpec(s).docs) direct.push(d);
    const back = await all(path.join(tmp, 'fin'));
    expect(back.length).toBe(direct.length);
    for (let i = 0; i < back.length; i += 1) if (back[i].id !== direct[i].id || back[i].text !== direct[i].text || back[i].source !== direct[i].source) expect(back[i]).toEqual(direct[i]);
    expect(new Set(back.map((d) => d.id)).size).toBe(back.length);
  });

  it('Reuters text: title + body, entities unescaped, sign-off stripped', async () => {
    const docs = (await all(path.join(tmp, 'fin'))).filter((d) => d.source === 'reuters');
    const first = docs.find((d) => d.id === 'reuters-1')!;
    expect(first.text.startsWith('BAHIA COCOA REVIEW\n\nShowers continued throughout the week')).toBe(true);
    for (const d of docs) {
      expect(d.text).not.toMatch(/&#\d+;|&lt;|&amp;|<BODY>|<TITLE>/);
      expect(d.text).not.toMatch(/\bReuter\s*$/);
    }
    // &lt; in the SGML becomes "<" (company tickers like <IBM>).
    expect(docs.some((d) => /<[A-Z]+>/.test(d.text))).toBe(true);
  });

  it('10-K text: blank-line runs collapsed, ids <file>#<field>', async () => {
    const docs = (await all(path.join(tmp, 'fin'))).filter((d) => d.source === 'sec10k');
    expect(docs[0].id).toBe('0000004457-23-000052#item1');
    expect(docs.map((d) => d.id.split('#')[1]).slice(0, 4)).toEqual(['item1', 'item1a', 'item7', 'item7a']);
    for (const d of docs) expect(d.text).not.toMatch(/\n\s*\n\s*\n/);
  });

  it('general corpus ingests as it is', async () => {
    const m = await prepareCorpus(GENERAL_SPECS, path.join(tmp, 'general'), { shardMb: 64 });
    const by = Object.fromEntries(m.sources.map((s) => [s.name, s.docs]));
    expect(by.enwiki).toBe(154); // 38 + 47 + 69 articles
    expect(by.bbc).toBe(1595); // one article per file
    expect(by.gutenberg).toBe(4); // one book per file
    // ~766 blank-line separated stories (765 separator lines; a few are doubled)
    expect(by.abc).toBeGreaterThan(750);
    expect(by.abc).toBeLessThanOrEqual(766);
    // WikiText-2 valid + test: about 60 articles each, split on " = Title = " headings
    expect(by.wikitext).toBeGreaterThan(100);
    const docs = await all(path.join(tmp, 'general'));
    const wt = docs.filter((d) => d.source === 'wikitext');
    for (const d of wt) expect(d.text).toMatch(/^= [^=].* =\n/);
    expect(docs.filter((d) => d.source === 'enwiki').every((d) => !d.text.includes('<doc') && !d.text.includes('</doc>'))).toBe(true);
    expect(docs.filter((d) => d.source === 'abc').every((d) => !d.text.includes('\r'))).toBe(true);
    expect(m.skipped).toEqual({});
  }, 60_000);

  it('skips re-preparing when inputs are unchanged, redoes it when they change', async () => {
    const dir = path.join(tmp, 'reuse');
    const src = path.join(tmp, 'reuse-src');
    await fs.mkdir(src, { recursive: true });
    await fs.writeFile(path.join(src, 'a.jsonl'), '{"text":"one"}\n{"text":"two"}\n');
    const s = { ...FIN_SPECS[1], name: 'x', path: src, format: 'jsonl' as const, fields: [] };
    const a = await prepareCorpus([s], dir, { shardMb: 1 });
    expect(a.reused).toBe(false);
    const b = await prepareCorpus([s], dir, { shardMb: 1 });
    expect(b.reused).toBe(true);
    expect(b.created).toBe(a.created);
    await fs.appendFile(path.join(src, 'a.jsonl'), '{"text":"three"}\n');
    const c = await prepareCorpus([s], dir, { shardMb: 1 });
    expect(c.reused).toBe(false);
    expect(c.totals.docs).toBe(3);
    expect((await readManifest(dir)).totals.docs).toBe(3);
  });
});
