import path from 'node:path';
import type { InputFormat, SourceSpec } from '../../src/recipe/types.js';
import { dataDir } from '../../src/util/paths.js';

export const KIT = dataDir();
export const TOKENIZER = path.join(KIT, 'tokenizer/20B_tokenizer.json');

export function spec(name: string, rel: string, format: InputFormat, extra: Partial<SourceSpec> = {}): SourceSpec {
  return { name, path: path.join(KIT, rel), format, fields: [], encoding: 'utf-8', skip_bad: false, ...extra };
}

/** The kit's financial corpus, as the FinPythia recipes read it. */
export const FIN_SPECS: SourceSpec[] = [
  spec('reuters', 'corpus/fin/reuters21578', 'reuters-sgml', { include: '*.sgm', encoding: 'latin1' }),
  spec('sec10k', 'corpus/fin/sec10k_2023', 'json', { fields: ['item1', 'item1a', 'item7', 'item7a'] }),
];

/** The kit's general-domain corpus (Pile stand-in). */
export const GENERAL_SPECS: SourceSpec[] = [
  spec('wikitext', 'corpus/general/wikitext-2', 'text', { include: '*.txt', separator: 'wikitext' }),
  spec('enwiki', 'corpus/general/enwiki_2015_wikiextractor', 'wikiextractor'),
  spec('bbc', 'corpus/general/bbc_news/news', 'text', { include: '*.txt', separator: 'file' }),
  // science.txt has a few latin-1 bytes (e.g. 0xB0, the degree sign) despite SOURCES.md's "ASCII".
  spec('abc', 'corpus/general/abc_science/science.txt', 'text', { encoding: 'latin1' }),
  spec('gutenberg', 'corpus/general/gutenberg_nltk', 'text', { include: '*.txt', separator: 'file' }),
];
