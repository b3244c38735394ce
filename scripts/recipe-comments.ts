/**
 * Regenerates the key comments of every shipped recipe from the schema (src/recipe/comments.ts):
 *   npm run recipes:comments            rewrite recipes/**\/*.yaml
 *   npm run recipes:comments -- --check  list the recipes whose comments differ; exit 1 if any
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withGeneratedComments } from '../src/recipe/comments.js';
import { ROOT } from '../src/util/paths.js';

export function shippedRecipes(dir = path.join(ROOT, 'recipes')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? shippedRecipes(path.join(dir, e.name)) : e.name.endsWith('.yaml') ? [path.join(dir, e.name)] : []).sort();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  const stale = shippedRecipes().filter((f) => {
    const text = readFileSync(f, 'utf8');
    const want = withGeneratedComments(text);
    if (want === text) return false;
    if (!check) writeFileSync(f, want);
    return true;
  });
  for (const f of stale) console.log(`${check ? 'differs' : 'rewrote'}: ${path.relative(ROOT, f)}`);
  if (check && stale.length) process.exit(1);
}
