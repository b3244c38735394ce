/** WikiExtractor output: `<doc id="…" url="…" title="…">` … `</doc>`; tags stripped, title line kept. */
import type { Doc } from '../doc.js';
import type { ReadContext } from './context.js';
import { cleanText, listFiles, readWhole } from './files.js';

const DOC = /<doc\b([^>]*)>([\s\S]*?)<\/doc>/g;
const ID = /\bid="([^"]*)"/;

export async function* readWikiExtractor(ctx: ReadContext): AsyncGenerator<Doc> {
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include)) {
    const text = await readWhole(f, ctx);
    if (text === null) continue;
    let n = 0;
    for (const m of text.matchAll(DOC)) {
      n++;
      const id = ID.exec(m[1])?.[1];
      if (!id) {
        ctx.bad('missing_id', `${f.abs}:${text.slice(0, m.index).split('\n').length}`, '<doc> tag has no id attribute');
        continue;
      }
      const body = cleanText(m[2]);
      if (!body) ctx.drop('empty_text');
      else yield { id: `wiki-${id}`, text: body, source: ctx.spec.name };
    }
    if (n === 0) ctx.bad('no_documents', f.abs, 'no <doc …>…</doc> documents found (is this WikiExtractor output?)');
  }
}
