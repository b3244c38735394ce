/**
 * What a report shows of each directory it is given: a cpt run (its losses, settings, selection
 * and evaluations) or a study (`npm run reproduce`'s results.md and plots).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { readResults, type ResultsFile } from '../eval/results.js';
import { exportKind } from '../export/out-dir.js';
import { newestResolvedRecipe } from '../train/checkpoint-store.js';
import { UserError } from '../util/errors.js';

export interface RunReport {
  kind: 'run';
  dir: string;
  /** The resolved recipe of the newest checkpoint (null for an export's run). */
  recipe: Record<string, unknown> | null;
  /** The selection's report.md, when the run selected its data. */
  selectionReport: string | null;
  /** Evaluation results in the run directory and its final/, with their file names. */
  evals: { file: string; results: ResultsFile }[];
}

export interface StudyReport {
  kind: 'study';
  dir: string;
  /** The study's results.md. */
  results: string;
}

export async function collect(dir: string): Promise<RunReport | StudyReport> {
  const abs = path.resolve(dir);
  if (!existsSync(abs)) throw new UserError(`${dir}: no such directory`);
  const study = path.join(abs, 'results.md');
  const isRun = existsSync(path.join(abs, 'metrics.jsonl')) || !!exportKind(abs);
  if (!isRun && existsSync(study)) return { kind: 'study', dir: abs, results: study };
  if (!isRun)
    throw new UserError(`${dir}: neither a run directory (metrics.jsonl), an export's run nor a study (results.md)`);
  const recipe = newestResolvedRecipe(abs);
  const sel = path.join(abs, 'selection', 'report.md');
  const evals: RunReport['evals'] = [];
  for (const d of [abs, path.join(abs, 'final')]) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((n) => /^eval-.*\.json$/.test(n)).sort()) {
      const file = path.join(d, f);
      evals.push({ file, results: await readResults(file) });
    }
  }
  return { kind: 'run', dir: abs, recipe, selectionReport: existsSync(sel) ? sel : null, evals };
}
