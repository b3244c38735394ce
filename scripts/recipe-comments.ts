/**
 * Regenerates the key comments of every shipped recipe and docs/recipe-keys.md from the schema
 * (src/recipe/comments.ts):
 *   npm run recipes:comments            rewrite recipes/**\/*.yaml and docs/recipe-keys.md
 *   npm run recipes:comments -- --check  list the files that differ; exit 1 if any
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { keyTable, withGeneratedComments } from '../src/recipe/comments.js';
import { ROOT } from '../src/util/paths.js';

export function shippedRecipes(dir = path.join(ROOT, 'recipes')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? shippedRecipes(path.join(dir, e.name)) : e.name.endsWith('.yaml') ? [path.join(dir, e.name)] : []).sort();
}

export const KEY_TABLE = path.join(ROOT, 'docs', 'recipe-keys.md');

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  const generated = (f: string, text: string) => (f === KEY_TABLE ? keyTable() : withGeneratedComments(text));
  const stale = [...shippedRecipes(), KEY_TABLE].filter((f) => {
    const text = readFileSync(f, { encoding: 'utf8', flag: 'a+' });
    const want = generated(f, text);
    if (want === text) return false;
    if (!check) writeFileSync(f, want);
    return true;
  });
  for (const f of stale) console.log(`${check ? 'differs' : 'rewrote'}: ${path.relative(ROOT, f)}`);
  if (check && stale.length) process.exit(1);
}
