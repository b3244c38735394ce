import type { Doc } from '../doc.js';
import type { ReadContext } from './context.js';
import { cleanText, jsonPath } from './files.js';

/**
 * Docs from one structured record (JSON object or CSV row): one per text field. With one
 * field the id is the record id; with several it is `<id>#<field>`.
 */
export function recordDocs(rec: unknown, fallbackId: string, where: string, ctx: ReadContext): Doc[] {
  const { fields, id_field: idField, name } = ctx.spec;
  let id = fallbackId;
  if (idField) {
    const v = jsonPath(rec, idField);
    if (typeof v !== 'string' && typeof v !== 'number') {
      ctx.bad('missing_id', where, `id field "${idField}" is missing or not a string/number`);
      return [];
    }
    id = String(v);
  }
  const docs: Doc[] = [];
  for (const field of fields) {
    const v = jsonPath(rec, field);
    if (v === undefined || v === null) {
      ctx.bad('missing_field', where, `text field "${field}" is missing`);
      continue;
    }
    if (typeof v !== 'string') {
      ctx.bad('missing_field', where, `text field "${field}" is a ${Array.isArray(v) ? 'array' : typeof v}, expected a string`);
      continue;
    }
    const text = cleanText(v);
    if (!text) {
      ctx.drop('empty_text');
      continue;
    }
    docs.push({ id: fields.length > 1 ? `${id}#${field}` : id, text, source: name });
  }
  return docs;
}

