/**
 * Plain text split into documents by a separator: a regex, or a preset — `blank-lines`
 * (default), `file` (whole file), `line`, `wikitext` (WikiText ` = Title = ` headings).
 */
import type { Doc } from '../doc.js';
import { UserError } from '../../util/errors.js';
import type { ReadContext } from './context.js';
import { cleanText, listFiles, readWhole } from './files.js';

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

export async function* readText(ctx: ReadContext): AsyncGenerator<Doc> {
  const sep = separatorOf(ctx.spec);
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include)) {
    const raw = await readWhole(f, ctx);
    if (raw === null) continue;
    const text = raw.replace(/\r\n?/g, '\n');
    const pieces = sep ? text.split(sep) : [text];
    let n = 0;
    for (let i = 0; i < pieces.length; i++) {
      const body = cleanText(pieces[i] ?? '');
      if (!body) continue; // nothing between two separators: not a record
      n++;
      yield { id: sep ? `${f.rel}#${i}` : f.rel, text: body, source: ctx.spec.name };
    }
    if (n === 0) ctx.bad('empty_file', f.abs, 'file holds only whitespace');
  }
}
