/**
 * The streamed `text` reader splits exactly as `String.split` on the whole file would, whatever the
 * chunk size: separators, CRLF pairs and multi-byte characters cut by chunk boundaries included.
 */
import { readFileSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReadContext } from '../../src/data/formats/context.js';
import { cleanText } from '../../src/data/formats/files.js';
import { readText, separatorOf, type TextStreamOptions } from '../../src/data/formats/text.js';
import type { SourceSpec } from '../../src/recipe/types.js';
import { KIT } from './kit.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-text-'));
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

const mk = (p: string, separator: string, encoding: 'utf-8' | 'latin1' = 'utf-8'): SourceSpec => ({ name: 't', path: p, format: 'text', fields: [], encoding, skip_bad: false, separator });

async function streamed(spec: SourceSpec, o: TextStreamOptions): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const d of readText(new ReadContext(spec), o)) out.push([d.id, d.text]);
  return out;
}

/** What splitting the whole decoded file gives. */
function whole(spec: SourceSpec): [string, string][] {
  const text = new TextDecoder(spec.encoding).decode(readFileSync(spec.path)).replace(/\r\n?/g, '\n');
  const name = path.basename(spec.path);
  return text
    .split(separatorOf(spec)!)
    .map((p, i): [string, string] => [`${name}#${i}`, cleanText(p)])
    .filter(([, t]) => t);
}

describe('text reader, streamed', () => {
  const cases: [string, string, string][] = [
    ['crlf', 'one\r\nstill one\r\n\r\ntwo\r\n\r\n\r\nthree\r\n', 'blank-lines'],
    ['crlf-line', 'a\r\nb\r\rc\rd\r\n', 'line'],
    ['caret', 'ttwo\nttt\nxt\ntail t\n', '^t'],
    ['multibyte', 'é😀 ñ\n\n'.repeat(7) + '终', 'blank-lines'],
    ['empty-match', 'abcabcabbc', '(?=b)'],
    ['lookbehind', 'xyaybxyy', '(?<=x)y'],
    ['wikitext', ' = A = \nbody a\n = = sub = = \nmore\n = B = \nbody b\n', 'wikitext'],
  ];
  for (const [name, body, sep] of cases) {
    it(`${name}: equals String.split for every chunk size`, async () => {
      const p = path.join(tmp, `${name}.txt`);
      await fs.writeFile(p, body);
      const want = whole(mk(p, sep));
      expect(want.length).toBeGreaterThan(1);
      for (const chunkBytes of [1, 2, 3, 5, 8, 64]) expect(await streamed(mk(p, sep), { chunkBytes, window: 16 })).toEqual(want);
    });
  }

  it('real files: WikiText-2 headings, Gutenberg paragraphs, latin-1 ABC Science lines', async () => {
    const files: SourceSpec[] = [
      mk(path.join(KIT, 'corpus/general/wikitext-2/test.txt'), 'wikitext'),
      mk(path.join(KIT, 'corpus/general/gutenberg_nltk/austen-emma.txt'), 'blank-lines'),
      mk(path.join(KIT, 'corpus/general/abc_science/science.txt'), 'line', 'latin1'),
    ];
    for (const s of files) {
      const want = whole(s);
      expect(want.length).toBeGreaterThan(50);
      expect(await streamed(s, { chunkBytes: 4093, window: 1000 })).toEqual(want);
    }
  });
});
