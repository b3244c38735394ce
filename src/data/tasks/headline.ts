import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { UserError } from '../../util/errors.js';
import { readTaskFile } from './read.js';
import { splitOf, distinct } from './split.js';
import type { TaskData, TaskDoc } from './types.js';

export const HEADLINE_FILE = 'gold-dataset-sinha-khandait.csv';
export const HEADLINE_TEST_FRACTION = 0.2;
export const HEADLINE_LABELS = ['No', 'Yes'] as const;

/**
 * FLARE-style yes/no questions, one per binary column of the kit's 10,570-row variant (it has no
 * "price or not" column, and one Past / one Future column instead of FLARE's price/general pairs).
 */
export const HEADLINE_QUESTIONS: ReadonlyArray<{ column: string; key: string; question: string }> = [
  { column: 'Price Direction Up', key: 'up', question: 'Does the news headline talk about price going up?' },
  { column: 'Price Direction Constant', key: 'constant', question: 'Does the news headline talk about price staying constant?' },
  { column: 'Price Direction Down', key: 'down', question: 'Does the news headline talk about price going down?' },
  { column: 'Asset Comparision', key: 'asset', question: 'Does the news headline compare gold with any other asset?' },
  { column: 'Past Information', key: 'past', question: 'Does the news headline talk about past information?' },
  { column: 'Future Information', key: 'future', question: 'Does the news headline talk about future information?' },
];

/** Gold-commodity news headlines (tab-separated, CSV quoting, CRLF): one doc per (headline, question). */
export async function loadHeadline(dataDir: string): Promise<TaskData> {
  const file = path.join(dataDir, 'tasks', 'headlines', HEADLINE_FILE);
  const text = await readTaskFile(file);
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { delimiter: '\t', columns: true, skip_empty_lines: true, bom: true }) as Record<string, string>[];
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new UserError(`${file}${err.lines ? `:${err.lines}` : ''}: malformed tab-separated file (${err.message})`);
  }
  const train: TaskDoc[] = [];
  const test: TaskDoc[] = [];
  rows.forEach((row, i) => {
    const headline = (row['News'] ?? '').replace(/\s+/g, ' ').trim();
    if (!headline) throw new UserError(`${file}: record ${i + 1}: empty or missing "News" column`);
    const side = splitOf(headline, HEADLINE_TEST_FRACTION) === 'test' ? test : train;
    for (const q of HEADLINE_QUESTIONS) {
      const v = (row[q.column] ?? '').trim();
      if (v !== '0' && v !== '1') throw new UserError(`${file}: record ${i + 1}: column "${q.column}" should be 0 or 1, got ${JSON.stringify(v)}`);
      side.push({
        id: `headline-${i + 1}-${q.key}`,
        fields: { text: headline, question: q.question, label: HEADLINE_LABELS[Number(v)]!, kind: q.key },
        gold: Number(v),
        group: headline,
      });
    }
  });
  return {
    name: 'headline',
    splits: { train, test },
    texts: { train: distinct(train.map((d) => d.fields.text!)), test: distinct(test.map((d) => d.fields.text!)) },
    files: [file],
  };
}
