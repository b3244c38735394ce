/**
 * Scoring spread over workers: worker I of N scores the corpus shards k with k mod N = I into the
 * shared score cache (one partial file and completion marker per shard), and a plain `cpt select`
 * merges them and samples. Any worker count and completion order gives the same table, because
 * the merge reads every shard's file in shard order.
 *
 * The workers of one job agree on what they score through `<run_dir>/selection/workers.json`
 * (written by the first worker to start; launchers clear it): a worker whose recipe, corpus or
 * worker count differs refuses to start, naming what differs.
 */
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Recipe } from '../recipe/types.js';
import { UserError } from '../util/errors.js';

export interface Worker {
  index: number;
  count: number;
}

/** `I/N` with 0 <= I < N. */
export function parseWorker(v: string): Worker {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const w = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!w || w.count < 1 || w.index >= w.count) throw new UserError(`--worker: expected I/N with 0 <= I < N (e.g. 0/4), got "${v}"`);
  return w;
}

export const ownsShard = (w: Worker) => (shard: number): boolean => shard % w.count === w.index;

/**
 * What every worker of a job must share: the corpus, the worker count, and what changes the
 * scores (per table: the inputs of its key). Other recipe edits (the budget, the schedule) do
 * not matter to scoring and are not compared.
 */
export interface WorkerJob {
  corpus: string;
  /** Per score table, the settings its key is made of (scoresInputs). */
  scoring: Record<string, unknown>[];
  workers: number;
  created: string;
}

export function workerJobFile(r: Recipe): string {
  return path.join(r.run_dir, 'selection', 'workers.json');
}

export function workerJob(corpusFingerprint: string, scoring: Record<string, unknown>[], workers: number): WorkerJob {
  return { corpus: corpusFingerprint, scoring, workers, created: new Date().toISOString() };
}

/** The settings that differ between two tables' inputs, as recipe keys with both values. */
function scoringDiff(mine: Record<string, unknown>[], job: Record<string, unknown>[]): string | undefined {
  const out: string[] = [];
  const name = (k: string) => (k === 'tokenizer' ? 'data.tokenizer (its hash)' : k === 'fin_test_fraction' ? 'data.fin_test_fraction' : k === 'metric' ? 'selection.metric' : `selection.${k}`);
  for (let t = 0; t < Math.max(mine.length, job.length); t++) {
    const a = mine[t] ?? {}, b = job[t] ?? {};
    const flat = (o: Record<string, unknown>): Record<string, unknown> => ({ ...o, ...((o.settings as Record<string, unknown> | null) ?? {}), settings: undefined });
    const fa = flat(a), fb = flat(b);
    for (const k of new Set([...Object.keys(fa), ...Object.keys(fb)]))
      if (k !== 'settings' && JSON.stringify(fa[k]) !== JSON.stringify(fb[k])) out.push(`${name(k)} (${JSON.stringify(fa[k])}, the job's ${JSON.stringify(fb[k])})`);
  }
  return out.length ? [...new Set(out)].join(', ') : undefined;
}

/** A worker joins the job on record (creating it when it is the first), or refuses. */
export async function joinWorkerJob(r: Recipe, mine: WorkerJob): Promise<void> {
  const file = workerJobFile(r);
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    writeFileSync(file, JSON.stringify(mine, null, 2) + '\n', { flag: 'wx' });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const job = JSON.parse(await fs.readFile(file, 'utf8')) as WorkerJob;
  const differs =
    job.corpus !== mine.corpus ? `the prepared corpus (fingerprint ${mine.corpus.slice(0, 12)}, the job's ${job.corpus.slice(0, 12)})` :
    job.workers !== mine.workers ? `the worker count (${mine.workers}, the job's ${job.workers})` :
    !Array.isArray(job.scoring) ? 'the scoring settings (a job record from an older cpt)' :
    scoringDiff(mine.scoring, job.scoring);
  if (differs) {
    throw new UserError(`${r.file}: this worker differs from the scoring job in ${file} (started ${job.created}) in ${differs}; ` +
      `start every worker with the same scoring settings and worker count, or delete ${file} to start a new job`);
  }
}

/** The merge finished the job (or a launcher starts a new one): the next workers start fresh. */
export async function endWorkerJob(r: Recipe): Promise<void> {
  if (existsSync(workerJobFile(r))) await fs.rm(workerJobFile(r), { force: true });
}
