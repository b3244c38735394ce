import { promises as fs, openSync, writeSync, fsyncSync, closeSync, renameSync, mkdirSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

/** Bytes for a message: MB from 0.1 MB up (as df -h users read them), else KB or bytes, never "0.0 MB". */
const mb = (b: number) => (b >= 0.1 * 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KB` : `${b} bytes`);

/** Free bytes for an unprivileged writer on the filesystem holding `dir` (undefined if unknown). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/**
 * A write that failed for want of space (ENOSPC, EDQUOT) as one line: what could not be written,
 * how much it needed and how much is free. Any other error is returned as it is.
 */
export function spaceError(e: unknown, what: string, needBytes: number | undefined, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
  const free = freeBytes(dir);
  const parts = [needBytes === undefined ? '' : `needs about ${mb(needBytes)}`, free === undefined ? '' : `${mb(free)} free in ${dir}`].filter(Boolean);
  return new UserError(`cannot write ${what}: ${code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded'}${parts.length ? ` (${parts.join(', ')})` : ''}`);
}

/** Write a file atomically: temp file in the same directory, fsync, rename, fsync the directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }); // a partial temp must not stay behind (on a full disk least of all)
    throw spaceError(e, file, Buffer.byteLength(data), path.dirname(file));
  }
  await fsyncDir(path.dirname(file));
}

/** Synchronous twin, for signal handlers and exit paths. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw spaceError(e, file, Buffer.byteLength(data), path.dirname(file));
  }
  fsyncDirSync(path.dirname(file));
}

export function fsyncDirSync(dir: string): void {
  try {
    const d = openSync(dir, 'r');
    fsyncSync(d);
    closeSync(d);
  } catch {
    /* some filesystems refuse directory fsync */
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  try {
    const d = await fs.open(dir, 'r');
    await d.sync();
    await d.close();
  } catch {
    /* some filesystems refuse directory fsync */
  }
}
