/** JSON Lines, streamed line by line: text field(s) by JSON path, id from `id_field` or `<file>:<line>`. */
import { createReadStream } from 'node:fs';
import type { Doc } from '../doc.js';
import type { ReadContext } from './context.js';
import { decode, listFiles } from './files.js';
import { recordDocs } from './records.js';

/** Lines of a file as raw bytes (without the newline), streamed. */
export async function* byteLines(file: string, ctx: ReadContext): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    ctx.bytesRead += chunk.length;
    const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      yield buf.subarray(start, nl);
      start = nl + 1;
    }
    rest = Buffer.from(buf.subarray(start));
  }
  if (rest.length) yield rest;
}

export async function* readJsonl(ctx: ReadContext): AsyncGenerator<Doc> {
  if (ctx.spec.fields.length === 0) ctx.spec.fields.push('text');
  for (const f of await listFiles(ctx.spec.path, ctx.spec.include)) {
    if (f.size === 0) {
      ctx.bad('empty_file', f.abs, 'file is empty');
      continue;
    }
    let line = 0;
    for await (const raw of byteLines(f.abs, ctx)) {
      line++;
      const where = `${f.abs}:${line}`;
      const s = decode(raw, where, ctx, null);
      if (s === null) continue;
      if (!s.trim()) continue; // blank lines separate nothing in JSONL
      let rec: unknown;
      try {
        rec = JSON.parse(s);
      } catch (e) {
        ctx.bad('bad_json', where, `invalid JSON (${(e as Error).message})`);
        continue;
      }
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
        ctx.bad('bad_json', where, 'expected a JSON object');
        continue;
      }
      yield* recordDocs(rec, `${f.rel}:${line}`, where, ctx);
    }
  }
}
