import { UserError } from '../../util/errors.js';
import { loadFpb } from './fpb.js';
import { loadFiqa } from './fiqa.js';
import { loadHeadline } from './headline.js';
import { loadNer } from './ner.js';
import { loadArcEasy, loadPiqa, loadLambada } from './open.js';
import type { TaskData, TaskSplit } from './types.js';

export type { TaskData, TaskDoc, TaskSplit, GoldEntity } from './types.js';
export { stableFraction, splitOf } from './split.js';

/**
 * Every task, the one list: its loader, and whether it is a finance task (what a recipe's
 * data.tasks may name, and what cpt eval scores by default) or an open-domain one (forgetting).
 * Its evaluation (prompt, choices, metric) is src/eval/tasks/<name>.yaml.
 */
const TASKS = {
  fpb: { load: loadFpb, finance: true },
  fiqa_sa: { load: loadFiqa, finance: true },
  headline: { load: loadHeadline, finance: true },
  ner: { load: loadNer, finance: true },
  arc_easy: { load: loadArcEasy, finance: false },
  piqa: { load: loadPiqa, finance: false },
  lambada: { load: loadLambada, finance: false },
} as const satisfies Record<string, { load: (dataDir: string) => Promise<TaskData>; finance: boolean }>;

export type TaskName = keyof typeof TASKS;
export type FinTask = { [K in TaskName]: (typeof TASKS)[K]['finance'] extends true ? K : never }[TaskName];
const names = Object.keys(TASKS) as TaskName[];
export const FIN_TASKS = names.filter((t) => TASKS[t].finance) as [FinTask, ...FinTask[]];
export const TASK_LOADERS = Object.fromEntries(names.map((t) => [t, TASKS[t].load])) as Readonly<Record<TaskName, (dataDir: string) => Promise<TaskData>>>;

// Loading parses whole files; cache per (dataDir, task) since selection and eval ask repeatedly.
const cache = new Map<string, Promise<TaskData>>();

/** Load a task's splits from the data kit (memoised per process). */
export function loadTask(name: TaskName, dataDir: string): Promise<TaskData> {
  const loader = TASK_LOADERS[name];
  if (!loader) throw new UserError(`unknown task "${String(name)}". Should be one of: ${Object.keys(TASK_LOADERS).join(', ')}`);
  const key = `${dataDir}\0${name}`;
  let p = cache.get(key);
  if (!p) {
    p = loader(dataDir);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

/**
 * The unlabeled text of a task split, one string per distinct example text (FPB/FiQA sentences,
 * headlines, NER sentences as space-joined tokens). TACP trains on `train`; ETS-DACP measures
 * similarity to it; task-test loss (eval and the monitor) scores `test`. Never pass `test` to
 * training: that would leak the evaluation set.
 */
export async function taskTexts(name: FinTask, split: TaskSplit, dataDir: string): Promise<string[]> {
  const data = await loadTask(name, dataDir);
  const texts = data.texts[split];
  if (!texts) throw new UserError(`task "${name}" has no ${split} split in the data kit`);
  return texts;
}
