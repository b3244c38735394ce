/**
 * The CUDA engine on the SIMT simulator (native/cuda/sim), as the tests drive it: its binaries,
 * built by `npm ci` (scripts/build-native.mjs) with g++ alone, and a runner that parses their
 * `name=value` lines.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../src/util/paths.js';
import { run } from '../helpers/run.js';

export { run };

export const SIM_DIR = path.join(ROOT, 'native', 'build-cuda-sim');
export const ASAN_DIR = path.join(ROOT, 'native', 'build-cuda-asan');
export const ORDERS = ['forward', 'reverse', 'shuffled'] as const;

/** Why the simulator build is missing (its SKIPPED.txt), or undefined when it is there. */
export function simMissing(): string | undefined {
  if (existsSync(path.join(SIM_DIR, 'cuda_check')) && existsSync(path.join(SIM_DIR, 'sim_check'))) return undefined;
  const skipped = path.join(SIM_DIR, 'SKIPPED.txt');
  return existsSync(skipped) ? readFileSync(skipped, 'utf8') : `${SIM_DIR} was not built (run: npm run build:native)`;
}

export interface SimRun {
  status: number | null;
  out: string;
  /** name=value lines of stdout. */
  values: Map<string, string>;
}

export async function runSim(bin: string, args: string[], env: Record<string, string> = {}): Promise<SimRun> {
  const r = await run(bin, args, { env: { ASAN_OPTIONS: 'detect_leaks=0', ...env } });
  const values = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([\w.-]+)=(.*)$/.exec(line);
    if (m) values.set(m[1], m[2]);
  }
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, values };
}

/** Every `*=pass|FAIL` line of a run, for one readable expectation. */
export function verdicts(r: SimRun): Record<string, string> {
  return Object.fromEntries([...r.values].filter(([, v]) => /^(pass|FAIL)/.test(v)).map(([k, v]) => [k, v.split(' ')[0]]));
}
