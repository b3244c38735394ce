import { promises as fs, openSync, writeSync, fsyncSync, closeSync, renameSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** Write a file atomically: temp file in the same directory, fsync, rename, fsync the directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** Synchronous twin, for signal handlers and exit paths. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
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
