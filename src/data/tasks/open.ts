import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { readTaskFile, lines, parseJson } from './read.js';
import type { TaskData, TaskDoc } from './types.js';

async function readJsonl(file: string): Promise<Array<{ line: number; value: Record<string, unknown> }>> {
  return lines(await readTaskFile(file))
    .map((l, i) => ({ l, line: i + 1 }))
    .filter(({ l }) => l.trim() !== '')
    .map(({ l, line }) => {
      const value = parseJson(file, l, line);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${file}:${line}: expected a JSON object`);
      return { line, value: value as Record<string, unknown> };
    });
}

/** ARC-Easy, AI2 layout; the answer is found by matching answerKey to the labels (A–E or 1–4). */
export async function loadArcEasy(dataDir: string): Promise<TaskData> {
  const dir = path.join(dataDir, 'tasks', 'open', 'arc_easy');
  const read = async (name: string): Promise<TaskDoc[]> => {
    const file = path.join(dir, name);
    return (await readJsonl(file)).map(({ line, value }) => {
      const q = value.question as { stem?: unknown; choices?: Array<{ text?: unknown; label?: unknown }> } | undefined;
      const choices = q?.choices;
      if (typeof value.id !== 'string' || typeof q?.stem !== 'string' || !Array.isArray(choices) || typeof value.answerKey !== 'string')
        throw new UserError(`${file}:${line}: expected {id, question: {stem, choices: [{text, label}]}, answerKey}`);
      const gold = choices.findIndex((c) => c.label === value.answerKey);
      if (gold < 0 || choices.some((c) => typeof c.text !== 'string'))
        throw new UserError(`${file}:${line}: answerKey "${value.answerKey}" is not one of the choice labels`);
      return { id: value.id, fields: { question: q.stem }, choices: choices.map((c) => c.text as string), gold };
    });
  };
  const train = await read('ARC-Easy-Train.jsonl');
  const test = await read('ARC-Easy-Test.jsonl');
  return {
    name: 'arc_easy',
    splits: { train, test },
    texts: { train: train.map((d) => d.fields.question!), test: test.map((d) => d.fields.question!) },
    files: [path.join(dir, 'ARC-Easy-Train.jsonl'), path.join(dir, 'ARC-Easy-Test.jsonl')],
  };
}

/** PIQA validation (the split lm-eval reports; labels in a parallel file). No train split in the kit. */
export async function loadPiqa(dataDir: string): Promise<TaskData> {
  const dir = path.join(dataDir, 'tasks', 'open', 'piqa');
  const file = path.join(dir, 'valid.jsonl');
  const labelFile = path.join(dir, 'valid-labels.lst');
  const rows = await readJsonl(file);
  const labels = lines(await readTaskFile(labelFile));
  if (labels.length !== rows.length) throw new UserError(`${labelFile}: has ${labels.length} labels but ${file} has ${rows.length} rows`);
  const test = rows.map(({ line, value }, i): TaskDoc => {
    const { goal, sol1, sol2 } = value;
    if (typeof goal !== 'string' || typeof sol1 !== 'string' || typeof sol2 !== 'string')
      throw new UserError(`${file}:${line}: expected {goal, sol1, sol2} strings`);
    const lab = labels[i]!.trim();
    if (lab !== '0' && lab !== '1') throw new UserError(`${labelFile}:${i + 1}: expected 0 or 1, got ${JSON.stringify(lab)}`);
    return { id: `piqa-${i + 1}`, fields: { goal }, choices: [sol1, sol2], gold: Number(lab) };
  });
  return { name: 'piqa', splits: { test }, texts: { test: test.map((d) => d.fields.goal!) }, files: [file, labelFile] };
}

/** LAMBADA (OpenAI): context = text up to the last space, target = the last word. */
export async function loadLambada(dataDir: string): Promise<TaskData> {
  const file = path.join(dataDir, 'tasks', 'open', 'lambada_openai', 'lambada_test.jsonl');
  const test = (await readJsonl(file)).map(({ line, value }): TaskDoc => {
    const text = value.text;
    const sp = typeof text === 'string' ? text.lastIndexOf(' ') : -1;
    if (typeof text !== 'string' || sp <= 0) throw new UserError(`${file}:${line}: expected {"text": "... last-word"}`);
    return { id: `lambada-${line}`, fields: { context: text.slice(0, sp), target: text.slice(sp + 1) }, gold: 0 };
  });
  return { name: 'lambada', splits: { test }, texts: { test: test.map((d) => `${d.fields.context} ${d.fields.target}`) }, files: [file] };
}
