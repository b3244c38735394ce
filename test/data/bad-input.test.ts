import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCorpus, readSpec, type Doc } from '../../src/data/index.js';
import type { InputFormat, SourceSpec } from '../../src/recipe/types.js';
import { UserError } from '../../src/util/errors.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-bad-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function file(name: string, data: string | Uint8Array): Promise<string> {
  const p = path.join(tmp, name);
  await fs.mkdir(path.dirname(p), { recursive: true });
  await fs.writeFile(p, data);
  return p;
}

function mk(p: string, format: InputFormat, extra: Partial<SourceSpec> = {}): SourceSpec {
  return { name: 't', path: p, format, fields: [], encoding: 'utf-8', skip_bad: false, ...extra };
}

async function read(s: SourceSpec): Promise<{ docs: Doc[]; skipped: Record<string, number> }> {
  const { docs, ctx } = readSpec(s);
  const out: Doc[] = [];
  for await (const d of docs) out.push(d);
  return { docs: out, skipped: ctx.skipped };
}

async function fails(s: SourceSpec): Promise<string> {
  try {
    await read(s);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('bad input → UserError naming file and line; skip_bad counts by reason', () => {
  it('malformed JSONL line', async () => {
    const p = await file('bad.jsonl', '{"text":"a"}\n{"text": "b"\n{"text":"c"}\n');
    expect(await fails(mk(p, 'jsonl'))).toMatch(new RegExp(`^${p}:2: invalid JSON`));
    const r = await read(mk(p, 'jsonl', { skip_bad: true }));
    expect(r.docs.map((d) => d.text)).toEqual(['a', 'c']);
    expect(r.skipped).toEqual({ bad_json: 1 });
  });

  it('missing or non-string text field', async () => {
    const p = await file('missing.jsonl', '{"body":"a"}\n{"text":"b"}\n{"text":5}\n');
    expect(await fails(mk(p, 'jsonl'))).toMatch(new RegExp(`^${p}:1: text field "text" is missing`));
    const r = await read(mk(p, 'jsonl', { skip_bad: true }));
    expect(r.docs.map((d) => d.id)).toEqual(['missing.jsonl:2']);
    expect(r.skipped).toEqual({ missing_field: 2 });
  });

  it('nested field paths and id field', async () => {
    const p = await file('nested.jsonl', '{"meta":{"id":"x1"},"a":{"b":"hello"}}\n');
    const r = await read(mk(p, 'jsonl', { fields: ['a.b'], id_field: 'meta.id' }));
    expect(r.docs).toEqual([{ id: 'x1', text: 'hello', source: 't' }]);
  });

  it('empty file', async () => {
    const p = await file('empty/e.jsonl', '');
    expect(await fails(mk(p, 'jsonl'))).toMatch(/e\.jsonl: file is empty/);
    const t = await file('empty2/e.txt', '');
    expect(await fails(mk(t, 'text'))).toMatch(/e\.txt: file is empty/);
    expect((await read(mk(path.dirname(t), 'text', { skip_bad: true }))).skipped).toEqual({ empty_file: 1 });
  });

  it('non-UTF-8 bytes when UTF-8 is expected (line of the bad byte); latin1 reads them', async () => {
    const bytes = Buffer.concat([Buffer.from('first line\nsecond line\ncaf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]);
    const p = await file('latin.txt', bytes);
    expect(await fails(mk(p, 'text'))).toMatch(new RegExp(`^${p}:3: not valid UTF-8 \\(byte 0xe9`));
    const r = await read(mk(p, 'text', { encoding: 'latin1' }));
    expect(r.docs[0].text).toBe('first line\nsecond line\ncafé au lait');
    expect((await read(mk(p, 'text', { skip_bad: true }))).skipped).toEqual({ bad_encoding: 1 });
    const j = await file('latin.jsonl', Buffer.concat([Buffer.from('{"text":"ok"}\n{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    expect(await fails(mk(j, 'jsonl'))).toMatch(new RegExp(`^${j}:2: not valid UTF-8`));
    const c = await file('latin.csv', Buffer.concat([Buffer.from('text\nok\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    expect(await fails(mk(c, 'csv', { fields: ['text'] }))).toMatch(new RegExp(`^${c}:3: not valid UTF-8`));
  });

  it('invalid JSON file and wrong top-level shape', async () => {
    const p = await file('json/a.json', '{\n  "item1": "x",\n  oops\n}');
    expect(await fails(mk(p, 'json', { fields: ['item1'] }))).toMatch(new RegExp(`^${p}:3: invalid JSON`));
    const q = await file('json2/b.json', '[1,2]');
    expect(await fails(mk(q, 'json', { fields: ['item1'] }))).toMatch(/expected one JSON object per file/);
  });

  it('CSV: quoted fields with delimiters and newlines; bad rows fail or are counted', async () => {
    const p = await file('a.tsv', 'id\tNews\n1\t"gold, up\nagain"\n2\tplain\n');
    const r = await read(mk(p, 'csv', { fields: ['News'], id_field: 'id', delimiter: '\t' }));
    expect(r.docs).toEqual([
      { id: '1', text: 'gold, up\nagain', source: 't' },
      { id: '2', text: 'plain', source: 't' },
    ]);
    const bad = await file('bad.csv', 'id,text\n1,ok\n2,too,many\n3,fine\n');
    expect(await fails(mk(bad, 'csv', { fields: ['text'] }))).toMatch(new RegExp(`^${bad}:3: bad CSV`));
    const s = await read(mk(bad, 'csv', { fields: ['text'], skip_bad: true }));
    expect(s.docs.map((d) => d.text)).toEqual(['ok', 'fine']);
    expect(s.skipped).toEqual({ bad_csv: 1 });
  });

  it('text: CRLF, separators, presets', async () => {
    const p = await file('crlf.txt', 'one\r\nstill one\r\n\r\ntwo\r\n\r\n\r\nthree\r\n');
    expect((await read(mk(p, 'text'))).docs.map((d) => d.text)).toEqual(['one\nstill one', 'two', 'three']);
    expect((await read(mk(p, 'text', { separator: 'file' }))).docs.map((d) => [d.id, d.text])).toEqual([['crlf.txt', 'one\nstill one\n\ntwo\n\nthree']]);
    expect((await read(mk(p, 'text', { separator: '^t' }))).docs.map((d) => d.text)).toEqual(['one\nstill one', 'wo', 'hree']);
    expect(await fails(mk(p, 'text', { separator: '(' }))).toMatch(/separator "\(" is not a valid regex/);
  });

  it('directories are walked recursively in sorted order, filtered by include', async () => {
    await file('tree/b/2.txt', 'b2');
    await file('tree/a/1.txt', 'a1');
    await file('tree/a/skip.md', 'no');
    await file('tree/c.txt', 'c');
    const r = await read(mk(path.join(tmp, 'tree'), 'text', { separator: 'file', include: '*.txt' }));
    expect(r.docs.map((d) => d.id)).toEqual(['a/1.txt', 'b/2.txt', 'c.txt']);
    const r2 = await read(mk(path.join(tmp, 'tree'), 'text', { separator: 'file', include: 'a/*' }));
    expect(r2.docs.map((d) => d.id)).toEqual(['a/1.txt', 'a/skip.md']);
    expect(await fails(mk(path.join(tmp, 'tree'), 'text', { include: '*.xml' }))).toMatch(/no files match include "\*\.xml"/);
    expect(await fails(mk(path.join(tmp, 'nope'), 'text'))).toMatch(/no such file or directory/);
  });

  it('SGML and WikiExtractor files that hold no documents', async () => {
    const p = await file('x.sgm', 'not sgml');
    expect(await fails(mk(p, 'reuters-sgml'))).toMatch(/no <REUTERS>/);
    const w = await file('wiki_00', 'plain');
    expect(await fails(mk(w, 'wikiextractor'))).toMatch(/no <doc/);
  });

  it('duplicate ids across sources are refused; drops reach the manifest', async () => {
    const a = await file('dup/a/x.txt', 'same');
    const b = await file('dup/b/x.txt', 'same');
    await expect(prepareCorpus([{ ...mk(a, 'text', { separator: 'file' }), name: 'a' }, { ...mk(b, 'text', { separator: 'file' }), name: 'b' }], path.join(tmp, 'dup-out'), { shardMb: 1 })).rejects.toThrow(/document id "x.txt" occurs twice/);
    const j = await file('drops/d.jsonl', '{"text":"a"}\n{"text":""}\nnot json\n');
    const m = await prepareCorpus([mk(j, 'jsonl', { skip_bad: true })], path.join(tmp, 'drops-out'), { shardMb: 1 });
    expect(m.totals.docs).toBe(1);
    expect(m.skipped).toEqual({ empty_text: 1, bad_json: 1 });
    expect(m.sources[0].skipped).toEqual({ empty_text: 1, bad_json: 1 });
  });
});
