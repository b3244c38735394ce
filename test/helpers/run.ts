/** Child processes for tests: asynchronous, because a long synchronous child starves vitest's worker RPC. */
import { spawn } from 'node:child_process';
import { ROOT } from '../../src/util/paths.js';

/** Runs a command to its end without blocking the test worker; never rejects. */
export function run(cmd: string, args: string[], o: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: o.cwd ?? ROOT, env: { ...process.env, ...o.env }, timeout: o.timeoutMs ?? 300_000 });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
