import type { SourceSpec } from '../../recipe/types.js';
import type { Doc } from '../doc.js';
import { ReadContext } from './context.js';
import { readCsv } from './csv.js';
import { readJson } from './json.js';
import { readJsonl } from './jsonl.js';
import { readReuters } from './reuters-sgml.js';
import { readText } from './text.js';
import { readWikiExtractor } from './wikiextractor.js';

export { ReadContext } from './context.js';
export { listFiles, type InputFile } from './files.js';

/** Every input format, the one list: its reader, and whether a source names the field(s) holding the text. */
const READERS = {
  'reuters-sgml': { read: readReuters, fields: false },
  wikiextractor: { read: readWikiExtractor, fields: false },
  jsonl: { read: readJsonl, fields: true },
  json: { read: readJson, fields: true },
  text: { read: readText, fields: false },
  csv: { read: readCsv, fields: true },
} as const satisfies Record<string, { read: (ctx: ReadContext) => AsyncGenerator<Doc>; fields: boolean }>;

export type InputFormat = keyof typeof READERS;
export const FORMATS = Object.keys(READERS) as [InputFormat, ...InputFormat[]];
/** Formats whose sources name the field(s) holding the text (and may name an id field). */
export const FIELD_FORMATS: ReadonlySet<InputFormat> = new Set(FORMATS.filter((f) => READERS[f].fields));

/** Documents of one source, in a deterministic order; drops are counted in `ctx.skipped`. */
export function readSource(ctx: ReadContext): AsyncGenerator<Doc> {
  return READERS[ctx.spec.format].read(ctx);
}

/** Documents of one source with a fresh context (convenience for tools and tests). */
export function readSpec(spec: SourceSpec): { docs: AsyncGenerator<Doc>; ctx: ReadContext } {
  const ctx = new ReadContext({ ...spec, fields: [...spec.fields] });
  return { docs: readSource(ctx), ctx };
}
