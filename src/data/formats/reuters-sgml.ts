/** Reuters-21578 SGML: one doc per <REUTERS> story, TITLE + BODY; stories without a body are counted as `no_body`. */
import type { Doc } from '../doc.js';
import type { ReadContext } from './context.js';
import { cleanText, listFiles, readWhole } from './files.js';

const STORY = /<REUTERS\b([^>]*)>([\s\S]*?)<\/REUTERS>/g;
const NEWID = /\bNEWID="(\d+)"/;
const TITLE = /<TITLE>([\s\S]*?)<\/TITLE>/;
const BODY = /<BODY>([\s\S]*?)<\/BODY>/;
/** The sign-off every body ends with: " Reuter\n&#3;" (sometimes REUTER, doubled, or without the word). */
const SIGNOFF = /(?:\s*\bReuters?\b)*\s*&#3;\s*$/i;

export function unescapeSgml(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, n: string) => {
      const c = Number(n);
      // Control characters (e.g. &#3; end-of-text, &#22;) carry no text.
      return c < 32 && c !== 9 && c !== 10 ? '' : String.fromCharCode(c);
    })
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

export async function* readReuters(ctx: ReadContext): AsyncGenerator<Doc> {
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include)) {
    const text = await readWhole(f, ctx);
    if (text === null) continue;
    let n = 0;
    for (const m of text.matchAll(STORY)) {
      n++;
      const id = NEWID.exec(m[1])?.[1];
      if (!id) {
        ctx.bad('missing_id', `${f.abs}:${text.slice(0, m.index).split('\n').length}`, '<REUTERS> tag has no NEWID attribute');
        continue;
      }
      const body = BODY.exec(m[2])?.[1];
      if (body === undefined) {
        ctx.drop('no_body');
        continue;
      }
      const title = TITLE.exec(m[2])?.[1];
      const parts = [title, body.replace(SIGNOFF, '')].filter((p): p is string => !!p).map((p) => unescapeSgml(p).trim());
      const doc = cleanText(parts.filter(Boolean).join('\n\n'));
      if (!doc) ctx.drop('empty_text');
      else yield { id: `reuters-${id}`, text: doc, source: ctx.spec.name };
    }
    if (n === 0) ctx.bad('no_documents', f.abs, 'no <REUTERS>…</REUTERS> documents found (is this Reuters-21578 SGML?)');
  }
}
