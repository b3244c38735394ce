import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, openPacked, packDocuments, prepareCorpus, readDocs, readTokenized, tokenizeCorpus, type Tokenizer } from '../../src/data/index.js';
import { FIN_SPECS, TOKENIZER } from './kit.js';
import { ROOT } from '../../src/util/paths.js';

let tmp: string;
let tok: Tokenizer;
const dir = () => path.join(tmp, 'corpus');
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-tokcache-'));
  tok = await loadTokenizer(TOKENIZER);
  // 10-K Item 7A sections: 37 docs, ~230k characters, in several shards.
  await prepareCorpus([{ ...FIN_SPECS[1], fields: ['item7a'] }], dir(), { shardMb: 0.05 });
}, 60_000);
afterAll(async () => {
  await tok.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('token cache', () => {
  it('tokenizes each shard once; readTokenized gives the same ids as encode, in corpus order', async () => {
    const r = await tokenizeCorpus(dir(), tok);
    expect(r.docs).toBe(37);
    const docs = [];
    for await (const b of readDocs(dir())) docs.push(...b);
    const cached = [];
    for await (const b of readTokenized(dir())) cached.push(...b);
    expect(cached.map((d) => d.id)).toEqual(docs.map((d) => d.id));
    let total = 0;
    for (let i = 0; i < docs.length; i++) {
      expect(Array.from(cached[i].ids)).toEqual(Array.from(tok.encode(docs[i].text)));
      total += cached[i].ids.length;
    }
    expect(r.tokens).toBe(total);
    // The held-out split applies to cached ids exactly as to docs.
    const split = { fraction: 0.3, part: 'test' as const };
    const heldDocs: string[] = [];
    for await (const b of readDocs(dir(), { split })) heldDocs.push(...b.map((d) => d.id));
    const heldTok: string[] = [];
    for await (const b of readTokenized(dir(), tok, { split })) heldTok.push(...b.map((d) => d.id));
    expect(heldTok).toEqual(heldDocs);
    expect(heldTok.length).toBeGreaterThan(0);
    expect(heldTok.length).toBeLessThan(37);

    const cacheDir = path.join(dir(), 'tokens', tok.hash.slice(0, 16));
    const files = (await fs.readdir(cacheDir)).filter((f) => f.endsWith('.tokens.arrow'));
    expect(files.length).toBeGreaterThan(1);
    const before = await Promise.all(files.map((f) => fs.stat(path.join(cacheDir, f)).then((s) => s.mtimeMs)));
    await tokenizeCorpus(dir(), tok); // cached: nothing rewritten
    const after = await Promise.all(files.map((f) => fs.stat(path.join(cacheDir, f)).then((s) => s.mtimeMs)));
    expect(after).toEqual(before);
  }, 60_000);

  it('a token changed in a cached file (B24): prepare --verify names it, reading refuses it, the next tokenization rebuilds that shard alone', async () => {
    await tokenizeCorpus(dir(), tok);
    const want = [];
    for await (const b of readTokenized(dir(), tok)) want.push(...b.map((d) => Array.from(d.ids)));
    const cacheDir = path.join(dir(), 'tokens', tok.hash.slice(0, 16));
    const files = (await fs.readdir(cacheDir)).filter((f) => f.endsWith('.tokens.arrow')).sort();
    const victim = path.join(cacheDir, files[0]);
    const bytes = await fs.readFile(victim);
    const at = Math.floor(bytes.length / 8) * 4; // inside the ids buffer, the file's bulk
    bytes.writeInt32LE(bytes.readInt32LE(at) ^ 1, at);
    await fs.writeFile(victim, bytes);
    const v = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'prepare', '--verify', '--out', dir()], { encoding: 'utf8' });
    expect(v.status).toBe(1);
    expect(v.stdout).toContain(`BAD ${victim}: fails its sha256 check`);
    expect(v.stdout.match(/^ok .*\.tokens\.arrow$/gm)).toHaveLength(files.length - 1);
    await expect(readTokenized(dir(), tok).next()).rejects.toThrow(`${victim} fails its sha256 check (a damaged token cache)`);
    const damaged: string[] = [];
    const r = await tokenizeCorpus(dir(), tok, { onDamaged: (f) => damaged.push(f) });
    expect(damaged).toEqual([victim]);
    expect(r.tokenized).toBe(1);
    const got = [];
    for await (const b of readTokenized(dir(), tok)) got.push(...b.map((d) => Array.from(d.ids)));
    expect(got).toEqual(want);
    // Truncated (B23): the same one line naming the file (not "Invalid typed array length"), the same repair.
    await fs.writeFile(victim, (await fs.readFile(victim)).subarray(0, 1000));
    await expect(readTokenized(dir(), tok).next()).rejects.toThrow(`${victim} fails its sha256 check (a damaged token cache)`);
    expect((await tokenizeCorpus(dir(), tok)).tokenized).toBe(1);
    const again = [];
    for await (const b of readTokenized(dir(), tok)) again.push(...b.map((d) => Array.from(d.ids)));
    expect(again).toEqual(want);
  }, 60_000);

  it('packs straight from the cache; a changed corpus makes the cache stale', async () => {
    const m = await packDocuments({ docs: readTokenized(dir(), tok), seqLen: 128, seed: 3, out: path.join(tmp, 'train.json') });
    const p = openPacked(path.join(tmp, 'train.json'));
    expect(m.docs).toBe(37);
    expect(p.count).toBe(m.count);
    expect(p.read(0, 1).length).toBe(128);
    p.close();
    await prepareCorpus([{ ...FIN_SPECS[1], fields: ['item7a'] }], dir(), { shardMb: 0.2, force: true });
    const it = readTokenized(dir(), tok);
    await expect(it.next()).rejects.toThrow(/stale/);
  }, 60_000);
});
