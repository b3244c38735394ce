/** `recipe.resolved.yaml`: the recipe exactly as a run used it, every default written out. */
import { stringify } from 'yaml';
import { recipeHash } from './resume.js';
import type { Recipe } from './types.js';

export function toYaml(r: Recipe): string {
  const { file, ...rest } = r;
  const header = `# Resolved from ${file}; every default filled in, paths absolute.\n# resume hash: ${recipeHash(r)}\n`;
  return header + stringify(rest, { lineWidth: 0, aliasDuplicateObjects: false });
}
