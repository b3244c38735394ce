import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@anush008/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, readSpec, type Tokenizer } from '../../src/data/index.js';
import { UserError } from '../../src/util/errors.js';
import { FIN_SPECS, GENERAL_SPECS, KIT, TOKENIZER } from './kit.js';

let tok: Tokenizer;
let hf: HfTokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(TOKENIZER);
  hf = HfTokenizer.fromFile(TOKENIZER);
});
afterAll(async () => {
  await tok.close();
});

/** Ground truth: HF's Rust tokenizers on the same tokenizer.json. */
async function reference(texts: string[]): Promise<number[][]> {
  const enc = await hf.encodeBatch(texts, { addSpecialTokens: false });
  return enc.map((e) => e.getIds());
}

async function expectParity(texts: string[]): Promise<number> {
  const ours = await tok.encodeBatch(texts);
  const ref = await reference(texts);
  let tokens = 0;
  for (let i = 0; i < texts.length; i++) {
    tokens += ref[i].length;
    const a = Array.from(ours[i]);
    if (a.length !== ref[i].length || a.some((x, j) => x !== ref[i][j])) {
      let j = 0;
      while (a[j] === ref[i][j]) j++;
      // Show where they part, not a 10k-element diff.
      expect({ doc: i, at: j, ours: a.slice(j, j + 10), ref: ref[i].slice(j, j + 10), text: JSON.stringify(texts[i]).slice(0, 200) }).toBeUndefined();
    }
  }
  return tokens;
}

async function take(spec: (typeof FIN_SPECS)[number], n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const d of readSpec(spec).docs) {
    out.push(d.text);
    if (out.length >= n) break;
  }
  return out;
}

/** A deterministic pseudo-random string over `alphabet` (LCG; no test flakiness). */
function longWord(alphabet: string, n: number, seed: number): string {
  const chars = [...alphabet];
  let x = seed;
  let out = '';
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += chars[(x >>> 16) % chars.length];
  }
  return out;
}

const EDGE = [
  '',
  ' ',
  'Hello',
  'Hello world, the end.',
  'emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇮🇺🇸',
  'CJK 中文字符 日本語のテキスト 한국어',
  'runs of spaces:  2   3    4' + ' '.repeat(24) + '24' + ' '.repeat(25) + '25' + ' '.repeat(50) + '50 end',
  'trailing spaces   ',
  '   leading spaces',
  'newlines\n\n\n\nand\r\n\r\nCRLF\r\nlines\ttabs\t\t\tmixed \t \n end',
  "contractions: don't, it's, we'll, they're, I'd, you've, I'm, O'Neil's",
  'numbers 1234567 3.14159 -2.5e10 $1,234.56 12% 1987-04-09',
  'specials <|endoftext|> inside <|padding|> text<|endoftext|>',
  'NFC: cafe\u0301 vs café; Å vs A\u030a; ﬁ ligature; Ｆｕｌｌｗｉｄｔｈ',
  'accents: naïve façade jalapeño Zürich Ærøskøbing',
  'symbols: ©®™ §¶ •… “quotes” ‘single’ — – ≤≥≠ √∞ €£¥',
  'control \u0000 \u0007 \u001b[0m zero-width\u200b joiner\u200d nbsp\u00a0x',
  'arabic مرحبا hebrew שלום hindi नमस्ते thai สวัสดี',
  'a'.repeat(5000),
  // Long single pre-tokens take the heap merge path (more than 48 bytes).
  longWord('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüß', 4000, 1),
  longWord('0123456789', 3000, 2),
  longWord('+/=-_*#@!?', 2000, 3),
  'Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft',
  'https://www.sec.gov/Archives/edgar/data/4457/000000445723000052/0000004457-23-000052-index.htm',
  '>Item 1. Business\n\n \n\n  Company Overview\n\n\n\nWe are North America’s largest',
];

describe('tokenizer: parity with HF tokenizers (Rust) on the GPT-NeoX-20B tokenizer.json', () => {
  it('loads the 20B tokenizer: vocab, EOS, spot checks from SOURCES.md', () => {
    expect(tok.vocabSize).toBe(50_277);
    expect(tok.eosId).toBe(0);
    expect(Array.from(tok.encode('Hello'))).toEqual([12092]);
    expect(Array.from(tok.encode(' the'))).toEqual([253]);
    expect(Array.from(tok.encode(','))).toEqual([13]);
    expect(tok.hash).toMatch(/^56ac4821e129d2c5/);
  });

  it('edge cases: emoji, CJK, space runs (added tokens), CRLF, specials, NFC', async () => {
    await expectParity(EDGE);
    for (const t of EDGE) expect(Array.from(tok.encode(t))).toEqual((await reference([t]))[0]);
  });

  it('thousands of real kit documents: 10-K, Reuters, FPB, Wikipedia, BBC, LAMBADA', async () => {
    const fpbBytes = await fs.readFile(path.join(KIT, 'tasks/fpb/Sentences_50Agree.txt'));
    const fpb = fpbBytes.toString('latin1').split('\n').filter(Boolean).map((l) => l.slice(0, l.lastIndexOf('@')));
    const lambada = (await fs.readFile(path.join(KIT, 'tasks/open/lambada_openai/lambada_test.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .slice(0, 1000)
      .map((l) => (JSON.parse(l) as { text: string }).text);
    const texts = [
      ...(await take(FIN_SPECS[1], 148)), // every 10-K section
      ...(await take(FIN_SPECS[0], 2500)),
      ...fpb,
      ...(await take(GENERAL_SPECS[1], 40)),
      ...(await take(GENERAL_SPECS[2], 300)),
      ...lambada,
    ];
    expect(texts.length).toBeGreaterThan(8000);
    const tokens = await expectParity(texts);
    expect(tokens).toBeGreaterThan(1_500_000);
  }, 120_000);

  it('decode(encode(x)) === x for NFC text; decode matches HF', async () => {
    const texts = [...EDGE, ...(await take(FIN_SPECS[1], 20))].map((t) => t.normalize('NFC'));
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
    const ids = Array.from(tok.encode(EDGE.join(' | ')));
    expect(tok.decode(ids)).toBe(await hf.decode(ids, false));
  });

  it('encodeBatch (worker threads) equals encode, in order', async () => {
    const texts = await take(FIN_SPECS[0], 3000);
    const batch = await tok.encodeBatch(texts);
    expect(batch.length).toBe(texts.length);
    for (let i = 0; i < texts.length; i += 97) expect(Array.from(batch[i])).toEqual(Array.from(tok.encode(texts[i])));
  });

  it('bad tokenizer files are user errors', async () => {
    await expect(loadTokenizer('/nonexistent/tokenizer.json')).rejects.toThrow(UserError);
    await expect(loadTokenizer(path.join(KIT, 'SOURCES.md'))).rejects.toThrow(/not valid JSON/);
    expect(() => tok.decode([60_000])).toThrow(/outside the vocabulary/);
  });
});
