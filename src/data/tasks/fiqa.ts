import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { readTaskFile, parseJson } from './read.js';
import { splitOf, distinct } from './split.js';
import type { TaskData, TaskDoc } from './types.js';

export const FIQA_LABELS = ['negative', 'neutral', 'positive'] as const;
export const FIQA_FILES = ['task1_headline_ABSA_train.json', 'task1_post_ABSA_train.json'] as const;
export const FIQA_TEST_FRACTION = 0.2;

/**
 * Score → label as FinGPT's FiQA benchmark (the FLARE-era convention): < -0.1 negative,
 * [-0.1, 0.1) neutral, >= 0.1 positive.
 */
export function fiqaLabel(score: number): (typeof FIQA_LABELS)[number] {
  if (score < -0.1) return 'negative';
  if (score < 0.1) return 'neutral';
  return 'positive';
}

interface FiqaRecord {
  sentence?: unknown;
  info?: Array<{ target?: unknown; sentiment_score?: unknown; aspects?: unknown }>;
}

/** FiQA-SA: the 1,173 labelled (sentence, target, score) rows of the two released train files. */
export async function loadFiqa(dataDir: string): Promise<TaskData> {
  const train: TaskDoc[] = [];
  const test: TaskDoc[] = [];
  const files: string[] = [];
  for (const name of FIQA_FILES) {
    const file = path.join(dataDir, 'tasks', 'fiqa_sa', name);
    files.push(file);
    const json = parseJson(file, await readTaskFile(file));
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new UserError(`${file}: expected a JSON object keyed by id`);
    const format = name.includes('headline') ? 'headline' : 'post';
    for (const [key, value] of Object.entries(json as Record<string, FiqaRecord>)) {
      const sentence = value?.sentence;
      if (typeof sentence !== 'string' || !Array.isArray(value.info))
        throw new UserError(`${file}: record "${key}": expected {sentence: string, info: [...]}`);
      value.info.forEach((info, j) => {
        const score = Number(info?.sentiment_score);
        if (typeof info?.target !== 'string' || typeof info.sentiment_score !== 'string' || !Number.isFinite(score))
          throw new UserError(`${file}: record "${key}" info[${j}]: expected target (string) and sentiment_score (numeric string)`);
        const label = fiqaLabel(score);
        const doc: TaskDoc = {
          id: `fiqa-${format}-${key}-${j}`,
          fields: { text: sentence.trim(), target: info.target, label, format, score: String(score) },
          gold: FIQA_LABELS.indexOf(label),
          group: sentence,
        };
        // Split by sentence: a headline with several targets stays on one side.
        (splitOf(sentence, FIQA_TEST_FRACTION) === 'test' ? test : train).push(doc);
      });
    }
  }
  return {
    name: 'fiqa_sa',
    splits: { train, test },
    texts: { train: distinct(train.map((d) => d.fields.text!)), test: distinct(test.map((d) => d.fields.text!)) },
    files,
  };
}
