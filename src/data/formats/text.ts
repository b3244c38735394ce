/**
 * Plain text split into documents by a separator: a regex, or a preset — `blank-lines`
 * (default), `file` (whole file), `line`, `wikitext` (WikiText ` = Title = ` headings).
 * Streamed: memory holds one read chunk plus the longest document, whatever the file size.
 */
import { createReadStream } from 'node:fs';
import type { Doc } from '../doc.js';
import { UserError } from '../../util/errors.js';
import type { ReadContext } from './context.js';
import { byteLines } from './jsonl.js';
import { cleanText, decode, listFiles, readWhole, type InputFile } from './files.js';

const PRESETS: Record<string, RegExp | null> = {
  'blank-lines': /\n[ \t]*\n/,
  file: null,
  line: /\n/,
  // Split before a top-level heading line " = Title = " (not " = = Section = = ").
  wikitext: /\n(?= = [^=\n][^\n]* = *\n)/,
};

export function separatorOf(spec: { separator?: string; name: string }): RegExp | null {
  const s = spec.separator ?? 'blank-lines';
  if (s in PRESETS) return PRESETS[s];
  try {
    return new RegExp(s, 'm');
  } catch (e) {
    throw new UserError(`source "${spec.name}": separator ${JSON.stringify(s)} is not a valid regex (${(e as Error).message}); presets: ${Object.keys(PRESETS).join(', ')}`);
  }
}

export interface TextStreamOptions {
  /** Bytes per read. */
  chunkBytes?: number;
  /**
   * A separator match is taken only once this many characters follow it (or the file has ended),
   * so a match cut by the chunk boundary, or a lookahead that needs the next chunk, is not taken
   * early; the same many characters before a piece are kept for `^` and lookbehinds.
   */
  window?: number;
}

export async function* readText(ctx: ReadContext, o: TextStreamOptions = {}): AsyncGenerator<Doc> {
  const sep = separatorOf(ctx.spec);
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include)) {
    let n = 0;
    if (!sep) {
      const raw = await readWhole(f, ctx); // one document per file by definition
      if (raw === null) continue;
      const body = cleanText(raw);
      if (body) {
        n++;
        yield { id: f.rel, text: body, source: ctx.spec.name };
      }
    } else {
      if (f.size === 0) {
        ctx.bad('empty_file', f.abs, 'file is empty');
        continue;
      }
      // A file with bad bytes is bad input as a whole (or skipped whole): checked before any of it is yielded.
      if (ctx.spec.encoding !== 'latin1' && !(await validUtf8(f, ctx))) continue;
      for await (const [i, piece] of splitStream(f, ctx, sep, o)) {
        const body = cleanText(piece);
        if (!body) continue; // nothing between two separators: not a record
        n++;
        yield { id: `${f.rel}#${i}`, text: body, source: ctx.spec.name };
      }
    }
    if (n === 0) ctx.bad('empty_file', f.abs, 'file holds only whitespace');
  }
}

/** True when every line decodes; otherwise reports the first bad line (an error, or a skip with skip_bad). */
async function validUtf8(f: InputFile, ctx: ReadContext): Promise<boolean> {
  const read = ctx.bytesRead;
  let line = 0;
  for await (const raw of byteLines(f.abs, ctx)) if (decode(raw, `${f.abs}:${++line}`, ctx, null) === null) return false;
  ctx.bytesRead = read; // progress counts the bytes once, in the splitting pass
  return true;
}

/**
 * The pieces `text.split(sep)` would give (CRLF → LF first), with their indices, read chunk by
 * chunk: a piece is yielded once a separator match after it is followed by `window` characters.
 */
async function* splitStream(f: InputFile, ctx: ReadContext, sep: RegExp, o: TextStreamOptions): AsyncGenerator<[number, string]> {
  const window = o.window ?? 1 << 16;
  const re = new RegExp(sep.source, sep.flags.includes('g') ? sep.flags : sep.flags + 'g');
  const decoder = new TextDecoder(ctx.spec.encoding === 'latin1' ? 'latin1' : 'utf-8');
  let buf = ''; // text from `start - (context kept)`; pieces begin at `start`
  let start = 0;
  let index = 0;
  let first = true;
  let cr = false; // a chunk ended in "\r": it may pair with the next chunk's "\n"
  let scanFrom = 0; // no separator starts in [start, scanFrom): a long document is not rescanned every chunk
  const take = (final: boolean): [number, string][] => {
    const out: [number, string][] = [];
    re.lastIndex = Math.max(start, scanFrom);
    scanFrom = Math.max(start, buf.length - window);
    for (let m = re.exec(buf); m; m = re.exec(buf)) {
      const q = m.index;
      const e = q + m[0].length;
      if (!final && buf.length - e < window) {
        scanFrom = Math.min(scanFrom, q);
        break;
      }
      if (q >= buf.length) break; // String.split never splits at the very end
      if (e === start) {
        re.lastIndex = q + 1; // an empty match where the piece starts splits nothing
        continue;
      }
      out.push([index++, buf.slice(start, q)]);
      start = e;
      if (m[0].length === 0) re.lastIndex = q + 1;
    }
    const keep = Math.max(0, start - window);
    buf = buf.slice(keep);
    start -= keep;
    scanFrom = Math.max(start, scanFrom - keep);
    return out;
  };
  for await (const chunk of createReadStream(f.abs, { highWaterMark: o.chunkBytes ?? 1 << 20 }) as AsyncIterable<Buffer>) {
    ctx.bytesRead += chunk.length;
    let text: string = (cr ? '\r' : '') + decoder.decode(chunk, { stream: true });
    if (first) text = text.replace(/^\uFEFF/, '');
    first = false;
    cr = text.endsWith('\r');
    if (cr) text = text.slice(0, -1);
    buf += text.replace(/\r\n?/g, '\n');
    yield* take(false);
  }
  buf += ((cr ? '\r' : '') + decoder.decode()).replace(/\r\n?/g, '\n');
  yield* take(true);
  yield [index, buf.slice(start)];
}
