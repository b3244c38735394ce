/** CSV/TSV via csv-parse (header row names the columns): text column(s), id column or `<file>:<record>`. */
import { createReadStream } from 'node:fs';
import { parse, CsvError } from 'csv-parse';
import type { Doc } from '../doc.js';
import { UserError } from '../../util/errors.js';
import type { ReadContext } from './context.js';
import { firstInvalidUtf8, lineOf, listFiles } from './files.js';
import { recordDocs } from './records.js';
import { promises as fs } from 'node:fs';

export async function* readCsv(ctx: ReadContext): AsyncGenerator<Doc> {
  if (ctx.spec.fields.length === 0) throw new UserError(`source "${ctx.spec.name}": csv needs fields (the text column names)`);
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include)) {
    if (f.size === 0) {
      ctx.bad('empty_file', f.abs, 'file is empty');
      continue;
    }
    if (ctx.spec.encoding === 'utf-8') {
      // csv-parse would decode bad bytes to U+FFFD silently; check first.
      const bytes = await fs.readFile(f.abs);
      const at = firstInvalidUtf8(bytes);
      if (at >= 0) {
        ctx.bad('bad_encoding', `${f.abs}:${lineOf(bytes, at)}`, `not valid UTF-8 (byte 0x${bytes[at].toString(16)} at offset ${at}); set encoding: latin1 if the file is single-byte`);
        continue;
      }
    }
    const parser = createReadStream(f.abs).pipe(
      parse({
        columns: true,
        bom: true,
        delimiter: ctx.spec.delimiter ?? ',',
        encoding: ctx.spec.encoding === 'latin1' ? 'latin1' : 'utf8',
        relax_column_count: false,
        skip_empty_lines: true,
        skip_records_with_error: ctx.spec.skip_bad,
        info: true,
      }),
    );
    parser.on('skip', () => ctx.drop('bad_csv'));
    try {
      for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number; records: number } }>) {
        yield* recordDocs(record, `${f.rel}:${info.records}`, `${f.abs}:${info.lines}`, ctx);
      }
    } catch (e) {
      if (e instanceof CsvError) throw new UserError(`${f.abs}:${(e as CsvError & { lines?: number }).lines ?? '?'}: bad CSV (${e.message}); set skip_bad to skip such records`);
      throw e;
    }
    ctx.bytesRead += f.size;
  }
}
