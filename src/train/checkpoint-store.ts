import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { removeDeadWriters } from '../util/lock.js';
import { sha256File } from '../util/hash.js';

export { sha256File };
import { spaceError } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

/**
 * Checkpoint directories `<run_dir>/step-<n>/`, written atomically (temp dir, fsync every file,
 * rename, fsync the parent) with a MANIFEST.json of sha256 per file, so a reader can tell a
 * complete checkpoint from one cut short or corrupted. Synchronous: it also runs on signal paths.
 */
export const MANIFEST = 'MANIFEST.json';

export interface Manifest {
  format: 'cpt-checkpoint/1';
  step: number;
  files: Record<string, { bytes: number; sha256: string }>;
}

export interface CheckpointRef {
  step: number;
  dir: string;
}

export function checkpointDir(runDir: string, step: number): string {
  return path.join(runDir, `step-${step}`);
}

/** File contents, or a writer that creates the file at the path it is given (e.g. safetensors). */
export type CheckpointFile = Uint8Array | string | ((file: string) => void);

/**
 * Write `files` as checkpoint `step` and keep only the newest `keep` checkpoints. On a failed
 * write (a full disk) the partial temp directory is removed and the error names the file, the
 * space the checkpoint needs (`needBytes`, an estimate for files written by functions) and the
 * space free; earlier checkpoints are untouched.
 */
export function writeCheckpoint(runDir: string, step: number, files: Record<string, CheckpointFile>, keep: number, needBytes = 0): string {
  const final = checkpointDir(runDir, step);
  const tmp = path.join(runDir, `.tmp-step-${step}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const manifest: Manifest = { format: 'cpt-checkpoint/1', step, files: {} };
  let file = tmp;
  try {
    mkdirSync(tmp, { recursive: true });
    for (const [name, data] of Object.entries(files)) {
      file = path.join(tmp, name);
      if (typeof data === 'function') {
        data(file);
        fsyncPath(file);
      } else writeSynced(file, typeof data === 'string' ? Buffer.from(data) : data);
      manifest.files[name] = { bytes: statSync(file).size, sha256: sha256File(file) };
    }
    file = path.join(tmp, MANIFEST);
    writeSynced(file, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
    fsyncPath(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const known = Object.values(files).reduce((n, d) => n + (typeof d === 'function' ? 0 : Buffer.byteLength(d)), 0);
    throw spaceError(e, `checkpoint ${final} (${path.basename(file)}); earlier checkpoints are untouched`, Math.max(needBytes, known), runDir);
  }
  // A checkpoint of the same step (a rerun after resume) is replaced whole.
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncPath(runDir);
  pruneCheckpoints(runDir, keep);
  return final;
}

/** The recipe a checkpoint was written under, every default filled in (recipe/yaml.ts). */
export const RESOLVED_RECIPE = 'recipe.resolved.yaml';

/** The resolved recipe of the run's newest checkpoint, parsed; null before the first checkpoint. */
export function newestResolvedRecipe(runDir: string): Record<string, unknown> | null {
  const ck = listCheckpoints(runDir).at(-1);
  const file = ck && path.join(ck.dir, RESOLVED_RECIPE);
  return file && existsSync(file) ? ((parse(readFileSync(file, 'utf8')) as Record<string, unknown> | null) ?? null) : null;
}

/** Checkpoints in the run directory, oldest first (by step, not by name). */
export function listCheckpoints(runDir: string): CheckpointRef[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: path.join(runDir, m[0]) }))
    .filter((c) => statSync(c.dir).isDirectory())
    .sort((a, b) => a.step - b.step);
}

/** Check a checkpoint against its manifest: every listed file present, right size, right sha256. */
export function verifyCheckpoint(dir: string): { ok: true; manifest: Manifest } | { ok: false; reason: string } {
  const mf = path.join(dir, MANIFEST);
  if (!existsSync(mf)) return { ok: false, reason: `no ${MANIFEST} (incomplete write)` };
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(mf, 'utf8')) as Manifest;
  } catch {
    return { ok: false, reason: `${MANIFEST} is not valid JSON` };
  }
  if (manifest.format !== 'cpt-checkpoint/1' || typeof manifest.files !== 'object') {
    return { ok: false, reason: `${MANIFEST} has an unknown format` };
  }
  for (const [name, want] of Object.entries(manifest.files)) {
    const f = path.join(dir, name);
    if (!existsSync(f)) return { ok: false, reason: `${name} is missing` };
    const size = statSync(f).size;
    if (size !== want.bytes) return { ok: false, reason: `${name} has ${size} bytes, manifest says ${want.bytes} (truncated?)` };
    if (sha256File(f) !== want.sha256) return { ok: false, reason: `${name} fails its sha256 check (corrupted)` };
  }
  return { ok: true, manifest };
}

/**
 * The newest checkpoint that verifies and that `open` can read (it throws a UserError when it
 * cannot, e.g. a state.json that does not parse); each bad one met on the way is reported through
 * `warn` and skipped.
 */
export function latestGoodCheckpoint<T>(runDir: string, warn: (msg: string) => void, open: (ref: CheckpointRef) => T): { ref: CheckpointRef; value: T } | undefined {
  const all = listCheckpoints(runDir);
  for (let i = all.length - 1; i >= 0; i--) {
    const v = verifyCheckpoint(all[i].dir);
    if (!v.ok) {
      warn(`checkpoint ${all[i].dir} is unusable: ${v.reason}; trying the previous one`);
      continue;
    }
    try {
      return { ref: all[i], value: open(all[i]) };
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      warn(`checkpoint ${all[i].dir} is unusable: ${e.message}; trying the previous one`);
    }
  }
  return undefined;
}

/** Remove all but the newest `keep` checkpoints (keep <= 0 keeps everything). */
export function pruneCheckpoints(runDir: string, keep: number): void {
  if (keep <= 0) return;
  const all = listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) rmSync(c.dir, { recursive: true, force: true });
}

/** Temp directories left by a writer that was killed mid-checkpoint (its pid is in the name). */
export function removeStaleTemps(runDir: string): void {
  removeDeadWriters(runDir, /^\.tmp-step-\d+-(\d+)$/);
}

function writeSynced(file: string, bytes: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncPath(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    /* some filesystems refuse directory fsync */
  }
}
