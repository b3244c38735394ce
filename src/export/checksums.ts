/**
 * SHA256SUMS beside an export, in `sha256sum` format (`<hex>  <path>`), so a copy on a cluster is
 * checked with `sha256sum -c SHA256SUMS` and `cpt inspect` checks what it reads.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256FileAsync } from '../util/hash.js';

export const SUMS_FILE = 'SHA256SUMS';

/**
 * Writes SHA256SUMS for `files` (relative to `out`), hashing those whose sum the writer did not
 * already compute (`known`); returns the seconds it took.
 */
export async function writeChecksums(out: string, files: string[], known: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  const lines: string[] = [];
  for (const f of files) lines.push(`${known[f] ?? (await sha256FileAsync(path.join(out, f)))}  ${f}`);
  await writeFileAtomic(path.join(out, SUMS_FILE), lines.join('\n') + '\n');
  return (performance.now() - t0) / 1000;
}

/** The files of `rels` (relative to `out`) whose sha256 differs from SHA256SUMS; null without one. */
export async function damagedFiles(out: string, rels: string[]): Promise<string[] | null> {
  const sums = path.join(out, SUMS_FILE);
  if (!existsSync(sums)) return null;
  const want = new Map(readFileSync(sums, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(66), l.slice(0, 64)] as const));
  const bad: string[] = [];
  for (const r of rels) {
    const w = want.get(r);
    if (w !== undefined && (!existsSync(path.join(out, r)) || (await sha256FileAsync(path.join(out, r))) !== w)) bad.push(r);
  }
  return bad;
}
