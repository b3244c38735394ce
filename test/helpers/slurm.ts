/** The one-node Slurm cluster the Slurm tests run on (test/slurm/cluster.sh), and waiting for its jobs. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { ROOT } from '../../src/util/paths.js';

/** Root, Debian's slurm-wlm and munge: what cluster.sh needs (.ci/run installs them). */
export const slurmAvailable =
  spawnSync('sh', ['-c', 'command -v sbatch && command -v slurmctld && command -v munged'], { encoding: 'utf8' }).status === 0 && process.getuid?.() === 0;

export const SLURM_MISSING = "needs root and Debian's slurm-wlm + munge (.ci/run installs them)";

/** Starts the cluster with its configuration in `conf`, stopped when the test finishes; returns the environment its commands need. */
export function startCluster(conf: string): NodeJS.ProcessEnv {
  const cluster = (cmd: string) => spawnSync('bash', [path.join(ROOT, 'test', 'slurm', 'cluster.sh'), cmd, conf], { encoding: 'utf8' });
  const up = cluster('start');
  expect(up.status, up.stderr).toBe(0);
  onTestFinished(() => void cluster('stop')); // the daemons this test started (none if one was running already)
  return { ...process.env, SLURM_CONF: path.join(conf, 'slurm.conf') };
}

/** Whether `job` (an id, or an array task `id_n`) is still queued or running. */
export function queued(job: string, env: NodeJS.ProcessEnv): boolean {
  return spawnSync('squeue', ['-h', '-j', job], { encoding: 'utf8', env }).stdout.trim() !== '';
}

/** Polls until `ok()` holds; throws naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean, ms = 240_000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}
