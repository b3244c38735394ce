/**
 * One writer per directory: an exclusive lock file (`.cpt.lock`: pid, host, start time, command)
 * created with O_EXCL, removed when the holder releases it or exits. A lock whose process is gone
 * (same host, pid no longer alive) is taken over; a live holder, or one on another host (whose
 * liveness cannot be checked), is refused with one line naming it. On a shared filesystem the
 * exclusive create is atomic on local disks and on NFSv3+ / Lustre / GPFS; a lock left by a
 * crashed process on another host must be removed by hand.
 */
import { readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from './errors.js';

export const LOCK_FILE = '.cpt.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** Whether a process with this pid exists on this host. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const held = new Map<string, number>(); // lock file -> nesting depth in this process
let exitHook = false;

function readInfo(file: string): LockInfo | undefined {
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
    return typeof j.pid === 'number' && typeof j.host === 'string' ? j : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Take the lock of `dir` (which must exist) for `what` ("cpt train", ...); returns the release.
 * Nested locks of one directory by the same process are counted, not refused.
 */
export function lockDir(dir: string, what: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const depth = held.get(file);
  if (depth !== undefined) {
    held.set(file, depth + 1);
    return () => release(file);
  }
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: what };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
    }
    const other = readInfo(file);
    // Unreadable (cut short by a kill) or left by a dead process on this host: take it over.
    if (other && (other.host !== me.host || pidAlive(other.pid))) {
      const where = other.host === me.host ? `pid ${other.pid}` : `pid ${other.pid} on host ${other.host}`;
      throw new UserError(
        `${dir} is in use by ${other.command} (${where}, since ${other.started}); wait for it or stop it` +
          (other.host === me.host ? '' : ` (if it is gone, delete ${file})`),
      );
    }
    rmSync(file, { force: true });
  }
  held.set(file, 1);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const f of held.keys()) removeIfMine(f);
    });
  }
  return () => release(file);
}

function release(file: string): void {
  const depth = held.get(file);
  if (depth === undefined) return;
  if (depth > 1) return void held.set(file, depth - 1);
  held.delete(file);
  removeIfMine(file);
}

function removeIfMine(file: string): void {
  if (readInfo(file)?.pid === process.pid) {
    try {
      unlinkSync(file);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Remove what dead writers left in `dir`: entries matching `pattern` whose first capture group is
 * the writer's pid (`.tmp-step-12-4242`, `x.spill-4242`), when that process is gone.
 */
export function removeDeadWriters(dir: string, pattern: RegExp): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = pattern.exec(n);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    rmSync(path.join(dir, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}
