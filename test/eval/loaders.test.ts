import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/util/errors.js';
import { dataDir } from '../../src/util/paths.js';
import { TASK_LOADERS, taskTexts, type TaskData } from '../../src/data/tasks/index.js';
import { loadFpb } from '../../src/data/tasks/fpb.js';
import { fiqaLabel } from '../../src/data/tasks/fiqa.js';
import { candidateSpans, goldEntities, parseConll } from '../../src/data/tasks/ner.js';

const kit = dataDir();
const count = (docs: { fields: Record<string, string> }[], key = 'label') =>
  docs.reduce<Record<string, number>>((m, d) => ((m[d.fields[key]!] = (m[d.fields[key]!] ?? 0) + 1), m), {});

function expectDisjoint(d: TaskData, key: string) {
  const test = new Set(d.splits.test!.map((x) => x.fields[key]));
  for (const x of d.splits.train!) expect(test.has(x.fields[key])).toBe(false);
}

describe('task loaders against SOURCES.md', () => {
  it('FPB 50Agree: 4,846 sentences, 604/2,879/1,363; split by text, deterministic, disjoint', async () => {
    const d = await TASK_LOADERS.fpb(kit);
    const all = [...d.splits.train!, ...d.splits.test!];
    expect(all.length).toBe(4846);
    expect(count(all)).toEqual({ negative: 604, neutral: 2879, positive: 1363 });
    expect(d.splits.test!.length / all.length).toBeGreaterThan(0.17);
    expect(d.splits.test!.length / all.length).toBeLessThan(0.23);
    expectDisjoint(d, 'text');
    const again = await TASK_LOADERS.fpb(kit);
    expect(again.splits.test!.map((x) => x.id)).toEqual(d.splits.test!.map((x) => x.id));
    // latin-1 kept byte for byte: no U+FFFD replacement characters
    expect(all.some((x) => x.fields.text!.includes('\ufffd'))).toBe(false);
  });

  it('FiQA-SA: 1,173 rows from the two train files, thresholds ±0.1, split by sentence', async () => {
    const d = await TASK_LOADERS.fiqa_sa(kit);
    expect(d.splits.train!.length + d.splits.test!.length).toBe(1173);
    expect([fiqaLabel(-0.11), fiqaLabel(-0.1), fiqaLabel(0.099), fiqaLabel(0.1)]).toEqual(['negative', 'neutral', 'neutral', 'positive']);
    expectDisjoint(d, 'text');
  });

  it('Headline: 10,570 headlines × 6 yes/no questions with the column counts of SOURCES.md', async () => {
    const d = await TASK_LOADERS.headline(kit);
    const all = [...d.splits.train!, ...d.splits.test!];
    expect(all.length).toBe(10570 * 6);
    const yes = (kind: string) => all.filter((x) => x.fields.kind === kind && x.fields.label === 'Yes').length;
    expect([yes('up'), yes('constant'), yes('down'), yes('asset'), yes('past'), yes('future')]).toEqual([4412, 444, 3912, 2001, 10252, 319]);
    expectDisjoint(d, 'text');
    // the headline with an embedded newline is read as one record
    expect(all.some((x) => x.fields.text!.startsWith('gold tumbles to 9-month low at rs 8,520'))).toBe(true);
  });

  it('NER: FIN5 train / FIN3 test token, sentence and tag counts', async () => {
    const d = await TASK_LOADERS.ner(kit);
    expect(d.texts.train!.length).toBe(1164);
    expect(d.texts.test!.length).toBe(303);
    expect(d.texts.train!.reduce((s, t) => s + t.split(' ').length, 0)).toBe(41010);
    expect(d.texts.test!.reduce((s, t) => s + t.split(' ').length, 0)).toBe(13246);
    // every candidate of a gold-matching span carries that type
    for (const c of d.splits.test!) expect(['person', 'organization', 'location', 'none']).toContain(c.fields.label);
    expect(d.entities!.test!.length).toBeGreaterThan(0);
  });

  it('open-domain sets: ARC-Easy 2,376 test / 2,251 train, PIQA 1,838, LAMBADA 5,153', async () => {
    const arc = await TASK_LOADERS.arc_easy(kit);
    expect([arc.splits.test!.length, arc.splits.train!.length]).toEqual([2376, 2251]);
    // numeric answer keys resolved by label, not position
    expect(arc.splits.test!.every((x) => x.gold! >= 0 && x.gold! < x.choices!.length)).toBe(true);
    const piqa = await TASK_LOADERS.piqa(kit);
    expect(piqa.splits.test!.length).toBe(1838);
    expect(piqa.splits.test!.filter((x) => x.gold === 1).length).toBe(928);
    expect(piqa.splits.train).toBeUndefined();
    const lam = await TASK_LOADERS.lambada(kit);
    expect(lam.splits.test!.length).toBe(5153);
    expect(lam.splits.test!.every((x) => !x.fields.target!.includes(' ') && x.fields.target!.length > 0)).toBe(true);
  });

  it('taskTexts gives distinct unlabeled texts of a split', async () => {
    const t = await taskTexts('fpb', 'train', kit);
    expect(new Set(t).size).toBe(t.length);
    expect(t.length).toBeGreaterThan(3000);
    expect(t.some((s) => /@(negative|neutral|positive)$/.test(s))).toBe(false); // labels stripped
    const test = new Set(await taskTexts('fpb', 'test', kit));
    expect(t.some((s) => test.has(s))).toBe(false);
  });
});

describe('NER parsing', () => {
  it('parses IO tags into entities and finds capitalised candidate runs', () => {
    const s = parseConll('f', 'A DT - O\nSILICON NNP - I-ORG\nBANK NNP - I-ORG\nand CC - O\nJohn NNP - I-PER\nSmith NNP - I-PER\nX NNP - I-MISC\n', 's')[0]!;
    expect(goldEntities(s).map((e) => [e.start, e.end, e.type])).toEqual([[1, 3, 'ORG'], [4, 6, 'PER']]);
    expect(candidateSpans(s.tokens)).toEqual([[1, 3], [4, 7]]); // leading determiner "A" dropped
    expect(candidateSpans(["The", "Borrower", "shall", "The"])).toEqual([[1, 2], [3, 4]]);
  });
});

describe('bad input', () => {
  it('names the file and line of a malformed FPB row', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-tasks-'));
    mkdirSync(path.join(dir, 'tasks', 'fpb'), { recursive: true });
    writeFileSync(path.join(dir, 'tasks', 'fpb', 'Sentences_50Agree.txt'), 'good line@positive\nno label here\n', 'latin1');
    await expect(loadFpb(dir)).rejects.toThrow(/Sentences_50Agree\.txt:2: expected "sentence@label"/);
    await expect(TASK_LOADERS.ner(dir)).rejects.toBeInstanceOf(UserError);
    await expect(TASK_LOADERS.ner(dir)).rejects.toThrow(/FIN5\.txt: task file not found/);
  });
});
