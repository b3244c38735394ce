/**
 * Runs a dependency graph of commands on a few lanes, splitting the machine's cores among the
 * jobs running at once: a job that starts alone gets every free core, two that start together
 * share them. With one lane every job inherits the terminal and gets no thread count (the
 * recipe's own setting: the run is bitwise the one `npx cpt train RECIPE` gives).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface Job {
  id: string;
  deps: Job[];
  /** Arguments for the command; `threads` is undefined with one lane. */
  args: (threads: number | undefined) => string[];
  /** Called when the job ends (also on failure) with its wall seconds. */
  done?: (seconds: number, ok: boolean) => Promise<void> | void;
  /** Printed when the job starts. */
  title: string;
}

export interface PoolOptions {
  command: string;
  cwd: string;
  lanes: number;
  cores: number;
  /** Per-job logs (lanes > 1). */
  logDir: string;
}

/** Runs every job after its dependencies; on the first failure starts nothing more and rejects. */
export async function runPool(jobs: Job[], o: PoolOptions): Promise<void> {
  const state = new Map<Job, 'wait' | 'run' | 'ok'>(jobs.map((j) => [j, 'wait']));
  let usedCores = 0;
  let failed: Error | undefined;
  if (o.lanes > 1) mkdirSync(o.logDir, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const running = () => [...state.values()].filter((s) => s === 'run').length;
    const pump = () => {
      if (failed) {
        if (!running()) reject(failed);
        return;
      }
      const ready = jobs.filter((j) => state.get(j) === 'wait' && j.deps.every((d) => state.get(d) === 'ok'));
      const n = Math.min(o.lanes - running(), ready.length, o.lanes > 1 ? o.cores - usedCores : 1);
      for (let i = 0; i < n; i++) {
        const threads = o.lanes > 1 ? Math.floor((o.cores - usedCores) / (n - i)) : undefined;
        start(ready[i]!, threads);
      }
      if (!running() && ![...state.values()].includes('wait')) resolve();
      else if (!running()) reject(new Error(`jobs wait on each other: ${jobs.filter((j) => state.get(j) === 'wait').map((j) => j.id).join(', ')}`));
    };
    const start = (job: Job, threads: number | undefined) => {
      state.set(job, 'run');
      usedCores += threads ?? 0;
      const t0 = Date.now();
      const log = path.join(o.logDir, `${job.id}.log`);
      console.log(`${job.title}${threads !== undefined ? ` (${threads} thread${threads > 1 ? 's' : ''}; log ${path.relative(o.cwd, log)})` : ''}`);
      const child = spawn(o.command, job.args(threads), { cwd: o.cwd, stdio: threads === undefined ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
      if (threads !== undefined) {
        const out = createWriteStream(log);
        child.stdout!.pipe(out);
        child.stderr!.pipe(out);
      }
      child.on('close', async (code, signal) => {
        usedCores -= threads ?? 0;
        const seconds = (Date.now() - t0) / 1000;
        const ok = code === 0;
        await job.done?.(seconds, ok);
        if (ok) {
          state.set(job, 'ok');
          if (threads !== undefined) console.log(`   ${job.id}: done in ${Math.round(seconds)} s`);
        } else {
          state.set(job, 'wait');
          const tail = threads !== undefined ? `\n${tailOf(log)}` : '';
          failed ??= new Error(`${job.id}: exited with ${code ?? signal}${tail}`);
        }
        pump();
      });
    };
    pump();
  });
}

function tailOf(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `   | ${l}`).join('\n');
  } catch {
    return '';
  }
}
