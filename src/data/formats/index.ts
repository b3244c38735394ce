import type { InputFormat, SourceSpec } from '../../recipe/types.js';
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

const READERS: Record<InputFormat, (ctx: ReadContext) => AsyncGenerator<Doc>> = {
  'reuters-sgml': readReuters,
  wikiextractor: readWikiExtractor,
  jsonl: readJsonl,
  json: readJson,
  text: readText,
  csv: readCsv,
};

export { FORMATS } from '../../recipe/names.js';

/** Documents of one source, in a deterministic order; drops are counted in `ctx.skipped`. */
export function readSource(ctx: ReadContext): AsyncGenerator<Doc> {
  return READERS[ctx.spec.format](ctx);
}

/** Documents of one source with a fresh context (convenience for tools and tests). */
export function readSpec(spec: SourceSpec): { docs: AsyncGenerator<Doc>; ctx: ReadContext } {
  const ctx = new ReadContext({ ...spec, fields: [...spec.fields] });
  return { docs: readSource(ctx), ctx };
}
