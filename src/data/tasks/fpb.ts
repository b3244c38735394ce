import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { readTaskFile, lines } from './read.js';
import { splitOf, distinct } from './split.js';
import type { TaskData, TaskDoc } from './types.js';

export const FPB_LABELS = ['negative', 'neutral', 'positive'] as const;
/** FLARE/PIXIU's FPB is the 50%-agreement file (4,845 rows: 3,100/776/970); test = its 20%. */
export const FPB_FILE = 'Sentences_50Agree.txt';
export const FPB_TEST_FRACTION = 0.2;

/** Financial PhraseBank: latin-1 `sentence@label` lines, split on the last `@`. */
export async function loadFpb(dataDir: string): Promise<TaskData> {
  const file = path.join(dataDir, 'tasks', 'fpb', FPB_FILE);
  const text = await readTaskFile(file, 'latin1');
  const train: TaskDoc[] = [];
  const test: TaskDoc[] = [];
  lines(text).forEach((line, i) => {
    const at = line.lastIndexOf('@');
    const label = at >= 0 ? line.slice(at + 1).trim() : '';
    const gold = (FPB_LABELS as readonly string[]).indexOf(label);
    if (at <= 0 || gold < 0)
      throw new UserError(`${file}:${i + 1}: expected "sentence@label" with label one of ${FPB_LABELS.join(', ')}, got ${JSON.stringify(line.slice(0, 80))}`);
    const sentence = line.slice(0, at).trim();
    const doc: TaskDoc = { id: `fpb-${i + 1}`, fields: { text: sentence, label }, gold };
    (splitOf(sentence, FPB_TEST_FRACTION) === 'test' ? test : train).push(doc);
  });
  return {
    name: 'fpb',
    splits: { train, test },
    texts: { train: distinct(train.map((d) => d.fields.text!)), test: distinct(test.map((d) => d.fields.text!)) },
    files: [file],
  };
}
