/** The directory an export writes: new, empty, or an earlier export of the same kind. */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { LOCK_FILE } from '../util/lock.js';

/**
 * `out` may be new, empty, or an earlier cpt export of `kind` (whose files are replaced). Anything
 * else is refused unless `force`, and even then a file cpt would write but did not (a checkout's
 * README.md) is never replaced. `ownFiles`: every path an export writes, relative to `out`.
 */
export function checkOut(out: string, force: boolean, kind: string, ownFiles: readonly string[]): void {
  if (!existsSync(out)) return;
  const entries = readdirSync(out).filter((e) => e !== LOCK_FILE);
  if (!entries.length || exportKind(out) === kind) return;
  const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? ', …' : '');
  if (!force) throw new UserError(`--out ${out} is not empty (${shown}) and holds no earlier cpt export of this kind; choose another directory, or pass --force to write beside what is there`);
  const clash = ownFiles.filter((f) => existsSync(path.join(out, f)));
  if (clash.length) throw new UserError(`--out ${out}: ${clash.join(', ')} already there and not written by cpt export, which never replaces such files; choose another directory`);
}

/** The `kind` in `out/export.json`, if an export wrote one. */
export function exportKind(out: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(out, 'export.json'), 'utf8')) as { kind?: string }).kind;
  } catch {
    return undefined;
  }
}

/**
 * The model files `files` of `from` placed in `to`: hard links where the file system allows (a
 * 6.9b model is 14 GB), copies otherwise. Files absent from `from` are skipped.
 */
export function linkModelFiles(from: string, to: string, files: readonly string[]): void {
  mkdirSync(to, { recursive: true });
  for (const f of files) {
    const src = path.join(from, f);
    if (!existsSync(src)) continue;
    try {
      linkSync(src, path.join(to, f));
    } catch {
      copyFileSync(src, path.join(to, f));
    }
  }
}
