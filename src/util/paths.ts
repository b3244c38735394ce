import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (where package.json is). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The data kit directory: `--data-dir`, else $CPT_DATA (an empty value counts as unset), else
 * ../shared/data beside the project. Recipes refer to it as ${CPT_DATA}.
 */
export function dataDir(override?: string): string {
  return path.resolve(override || process.env.CPT_DATA || path.join(ROOT, '..', 'shared', 'data'));
}
