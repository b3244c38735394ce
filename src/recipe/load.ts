/**
 * `loadRecipe(file)`: YAML → interpolated → schema-checked → resolved `Recipe`. Every problem in the
 * file is collected into one `UserError`, one line each: `recipes/x.yaml:12 train.lr: expected …`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { UserError } from '../util/errors.js';
import { dataDir } from '../util/paths.js';
import { interpolateTree } from './interpolate.js';
import { makeLocator } from './locate.js';
import type { ModelInfo } from './model-info.js';
import { formatPath, fromZodIssue, type Problem } from './problems.js';
import { resolveRaw } from './resolve.js';
import { RawRecipeSchema, keysAt } from './schema.js';
import type { Recipe } from './types.js';

export interface LoadOptions {
  /** Data kit directory for `${CPT_DATA}` (default: `dataDir()`, i.e. $CPT_DATA or ../shared/data). */
  dataDir?: string;
  /** Extra variables for `${NAME}` (tests); the environment is used otherwise. */
  env?: Record<string, string | undefined>;
}

export interface LoadedRecipe {
  recipe: Recipe;
  model: ModelInfo;
  /** Formatted `file:line key: message` notes (warnings) that did not stop the load. */
  notes: string[];
  /** `file:line` of a key path (or the file alone when the key is not in it). */
  where: (path: (string | number)[]) => string;
}

/** Where each loaded recipe's keys are in its file, for errors raised after loading (see inputs.ts). */
const locators = new WeakMap<Recipe, (path: (string | number)[]) => string>();

export function whereIn(recipe: Recipe, keyPath: (string | number)[]): string {
  return locators.get(recipe)?.(keyPath) ?? displayPath(recipe.file);
}

/** The file as the user would type it: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export async function loadRecipe(file: string, opts: LoadOptions = {}): Promise<Recipe> {
  return (await loadRecipeDetailed(file, opts)).recipe;
}

/** A recipe is a few KiB; anything far larger is refused before parsing (a huge value or a bomb). */
const MAX_RECIPE_BYTES = 1 << 20;

export async function loadRecipeDetailed(file: string, opts: LoadOptions = {}): Promise<LoadedRecipe> {
  const abs = path.resolve(file);
  let text: string;
  try {
    const st = await fs.stat(abs);
    if (st.isFile() && st.size > MAX_RECIPE_BYTES) throw new UserError(`${displayPath(abs)}: ${(st.size / 2 ** 20).toFixed(1)} MiB is not a recipe (recipes are a few KiB; the limit is 1 MiB)`);
    text = await fs.readFile(abs, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${displayPath(abs)}: cannot read recipe (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message})`);
  }
  return parseRecipe(text, abs, opts);
}

/** Parse recipe text as if it were the file `file` (absolute). Exposed for tests and tools. */
export function parseRecipe(text: string, file: string, opts: LoadOptions = {}): LoadedRecipe {
  const shown = displayPath(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new UserError(
      `${shown}: invalid YAML:\n` +
        doc.errors
          .map((e) => {
            const at = lines.linePos(e.pos[0]);
            return `  ${shown}:${at.line}:${at.col} ${e.message.split('\n')[0]}`;
          })
          .join('\n'),
    );
  }
  const locate = makeLocator(doc, lines);
  const fmtAll = (ps: Problem[]) =>
    ps
      .map((p) => ({ p, line: locate(p.path, p.key) ?? 0 }))
      .sort((a, b) => a.line - b.line) // stable: same-line problems keep their order
      .map(({ p, line }) => `${shown}${line ? `:${line}` : ''} ${formatPath(p.path)}: ${p.message}`);

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // The yaml library stops alias expansion that would blow up ("billion laughs").
    throw new UserError(`${shown}: invalid YAML: ${(e as Error).message} (aliases expand to too many nodes)`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new UserError(`${shown}: expected a mapping of recipe keys (method:, data:, model:, …), found ${data === null || data === undefined ? 'an empty file' : Array.isArray(data) ? 'a list' : JSON.stringify(data)}`);
  }
  const kitDir = dataDir(opts.dataDir);
  const vars = { ...process.env, ...opts.env, CPT_DATA: kitDir };
  const problems: Problem[] = interpolateTree(data, vars);
  const parsed = RawRecipeSchema.safeParse(data);
  if (!parsed.success) for (const issue of parsed.error.issues) problems.push(...fromZodIssue(issue, data, (p) => keysAt(p)));
  if (!parsed.success || problems.length) throw collected(shown, fmtAll(problems));

  const r = resolveRaw(parsed.data, file, kitDir);
  if (r.errors.length) throw collected(shown, fmtAll(r.errors));
  const where = (p: (string | number)[]) => {
    const line = locate(p);
    return `${shown}${line ? `:${line}` : ''}`;
  };
  locators.set(r.recipe, where);
  return { recipe: r.recipe, model: r.model, notes: fmtAll(r.notes), where };
}

function collected(shown: string, lines: string[]): UserError {
  // One problem fits on one line; several get a header with the count.
  const unique = [...new Set(lines)];
  if (unique.length === 1) return new UserError(unique[0]);
  return new UserError(`${shown}: ${unique.length} problems:\n${unique.map((l) => `  ${l}`).join('\n')}`);
}

