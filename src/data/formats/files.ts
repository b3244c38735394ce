/** File helpers shared by the format readers: directory walk, decoding, text clean-up. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { minimatch } from 'minimatch';
import { UserError } from '../../util/errors.js';
import type { ReadContext } from './context.js';

export interface InputFile {
  abs: string;
  /** Path relative to the spec's path (the file name when the spec names a file). */
  rel: string;
  size: number;
  mtimeMs: number;
}

/** The spec's file, or every file under its directory in sorted order, filtered by `include`. */
export async function listFiles(root: string, include?: string): Promise<InputFile[]> {
  let st;
  try {
    st = await fs.stat(root);
  } catch {
    throw new UserError(`input ${root}: no such file or directory`);
  }
  if (st.isFile()) return [{ abs: root, rel: path.basename(root), size: st.size, mtimeMs: st.mtimeMs }];
  const out: InputFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await fs.readdir(dir)).sort();
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const abs = path.join(dir, name);
      const s = await fs.stat(abs);
      if (s.isDirectory()) await walk(abs);
      else if (s.isFile()) {
        const rel = path.relative(root, abs).split(path.sep).join('/');
        // A glob without "/" matches the file name, otherwise the relative path.
        if (include && !minimatch(include.includes('/') ? rel : name, include, { dot: false })) continue;
        out.push({ abs, rel, size: s.size, mtimeMs: s.mtimeMs });
      }
    }
  };
  await walk(root);
  if (out.length === 0) throw new UserError(`input ${root}: no files${include ? ` match include "${include}"` : ''}`);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Offset of the first byte that breaks UTF-8, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let len: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) (len = 2), (min = 0x80);
    else if (c >= 0xe0 && c <= 0xef) (len = 3), (min = 0x800);
    else if (c >= 0xf0 && c <= 0xf4) (len = 4), (min = 0x10000);
    else return i;
    if (i + len > n) return i;
    let cp = c & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return -1;
}

export function lineOf(b: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (b[i] === 0x0a) line++;
  return line;
}

/**
 * Decodes bytes in the spec's encoding (`where` already names the line when firstLine is null). Bad UTF-8 is reported with its line (or, with
 * skip_bad, the whole file is skipped: returns null). A leading UTF-8 BOM is dropped.
 */
export function decode(bytes: Uint8Array, where: string, ctx: ReadContext, firstLine: number | null = 1): string | null {
  if (ctx.spec.encoding === 'latin1') return latin1.decode(bytes);
  try {
    return utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    const at = firstInvalidUtf8(bytes);
    const loc = firstLine === null ? where : `${where}:${firstLine - 1 + lineOf(bytes, Math.max(at, 0))}`;
    ctx.bad('bad_encoding', loc, `not valid UTF-8 (byte 0x${bytes[at]?.toString(16) ?? '??'} at offset ${at}); set encoding: latin1 if the file is single-byte`);
    return null;
  }
}

/** Reads and decodes a whole file; empty files are bad input. Returns null when skipped. */
export async function readWhole(f: InputFile, ctx: ReadContext): Promise<string | null> {
  const bytes = await fs.readFile(f.abs);
  ctx.bytesRead += bytes.length;
  if (bytes.length === 0) {
    ctx.bad('empty_file', f.abs, 'file is empty');
    return null;
  }
  return decode(bytes, f.abs, ctx);
}

/** CRLF → LF, runs of blank lines → one blank line, trailing spaces on lines dropped, trimmed. */
export function cleanText(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(/[^\S\n]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Value at a dotted path (`a.b.0.c`) of a parsed JSON value. */
export function jsonPath(obj: unknown, p: string): unknown {
  let cur: unknown = obj;
  for (const key of p.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
