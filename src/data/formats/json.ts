/** One JSON object per file (e.g. 10-K sections): one doc per selected field, id `<file>#<field>`. */
import type { Doc } from '../doc.js';
import { UserError } from '../../util/errors.js';
import type { ReadContext } from './context.js';
import { listFiles, readWhole } from './files.js';
import { recordDocs } from './records.js';

export async function* readJson(ctx: ReadContext): AsyncGenerator<Doc> {
  if (ctx.spec.fields.length === 0) throw new UserError(`source "${ctx.spec.name}": json needs fields (e.g. item1,item1a,item7,item7a)`);
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include ?? '*.json')) {
    const text = await readWhole(f, ctx);
    if (text === null) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      const msg = (e as Error).message;
      const pos = /position (\d+)/.exec(msg)?.[1];
      const line = pos === undefined ? 1 : text.slice(0, Number(pos)).split('\n').length;
      ctx.bad('bad_json', `${f.abs}:${line}`, `invalid JSON (${msg})`);
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      ctx.bad('bad_json', f.abs, 'expected one JSON object per file');
      continue;
    }
    // Ids are always per field, even with one field, so they stay stable when fields are added.
    const id = f.rel.replace(/\.json$/i, '');
    for (const d of recordDocs(obj, id, f.abs, ctx)) yield ctx.spec.fields.length > 1 ? d : { ...d, id: `${d.id}#${ctx.spec.fields[0]}` };
  }
}
