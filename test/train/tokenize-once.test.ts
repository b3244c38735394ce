/**
 * One tokenization per corpus: selection scores from the prepared corpus's token cache, training
 * packs the chosen ids (and Fin-test) from the same cache, and a second recipe over the same
 * corpus tokenizes nothing. Counted at the tokenizer: every text handed to encodeBatch.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { prepareTrainInputs } from '../../src/train/inputs.js';
import { readDocs } from '../../src/data/index.js';

const encoded: string[] = [];
vi.mock('../../src/data/tokenizer.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/data/tokenizer.js')>();
  return {
    ...m,
    loadTokenizer: async (...a: Parameters<typeof m.loadTokenizer>) => {
      const t = await m.loadTokenizer(...a);
      return new Proxy(t, {
        get(target, p) {
          if (p === 'encodeBatch') return async (texts: string[]) => (encoded.push(...texts), target.encodeBatch(texts));
          const v = Reflect.get(target, p, target) as unknown;
          return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
});

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('one tokenization per corpus', { timeout: 180_000 }, () => {
  it('select + train inputs tokenize each corpus document once; another method on the same corpus tokenizes none', async () => {
    const ets = await writeTinyRecipe({ name: 'ets', method: 'ets-dacp', overrides: { selection: { budget: 0.3 } } });
    dirs.push(ets.dir);
    const quiet = { log: () => {} };
    const r = await loadRecipe(ets.file);
    const inputs = await prepareTrainInputs(r, quiet);
    expect(inputs.train.count).toBeGreaterThan(0);
    expect(inputs.finTest?.count).toBeGreaterThan(0);
    inputs.close();
    const corpus = new Map<string, number>();
    for await (const b of readDocs(r.data.prepared_dir)) for (const d of b) corpus.set(d.text, (corpus.get(d.text) ?? 0) + 1);
    const docs = [...corpus.values()].reduce((a, n) => a + n, 0);
    const ofCorpus = (xs: string[]): number => xs.filter((x) => corpus.has(x)).length;
    expect(docs).toBeGreaterThan(500);
    expect(ofCorpus(encoded)).toBe(docs); // scoring, the train rows and Fin-test: one pass

    encoded.length = 0;
    const dacp = await writeTinyRecipe({ name: 'dacp', method: 'dacp', dir: ets.dir });
    const d = await loadRecipe(dacp.file);
    (await prepareTrainInputs(d, quiet)).close();
    expect(ofCorpus(encoded)).toBe(0);
  });

  it('packed rows carry their sha256: a damaged packed file is named and packed again, with the same rows', async () => {
    const t = await writeTinyRecipe({ name: 'packed', method: 'dacp' });
    dirs.push(t.dir);
    const r = await loadRecipe(t.file);
    const first = await prepareTrainInputs(r, { log: () => {} });
    const rows = first.train.read(0, first.train.count).slice();
    first.close();
    const bin = path.join(r.run_dir, 'data', 'train.packed.json.bin');
    const b = readFileSync(bin);
    b[Math.floor(b.length / 2)] ^= 1;
    writeFileSync(bin, b);
    const lines: string[] = [];
    const again = await prepareTrainInputs(r, { log: (l) => lines.push(l) });
    expect(lines).toContain(`${bin} fails its sha256 check (damaged); packing it again`);
    expect(Array.from(again.train.read(0, again.train.count))).toEqual(Array.from(rows));
    again.close();
  });
});
