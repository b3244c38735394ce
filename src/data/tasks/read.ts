import { promises as fs } from 'node:fs';
import { UserError } from '../../util/errors.js';

/** Read a task file; a missing file is a UserError naming it and the kit section to consult. */
export async function readTaskFile(file: string, encoding: 'utf-8' | 'latin1' = 'utf-8'): Promise<string> {
  try {
    return await fs.readFile(file, encoding === 'latin1' ? 'latin1' : 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${file}: task file not found (is --data-dir / $CPT_DATA the data kit? see its SOURCES.md)`);
    throw new UserError(`${file}: cannot read (${code ?? String(e)})`);
  }
}

/** Lines without the trailing empty one; CRLF tolerated. */
export function lines(text: string): string[] {
  const ls = text.split(/\r?\n/);
  if (ls.length && ls[ls.length - 1] === '') ls.pop();
  return ls;
}

export function parseJson(file: string, text: string, line?: number): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}${line !== undefined ? `:${line}` : ''}: invalid JSON (${(e as Error).message})`);
  }
}
