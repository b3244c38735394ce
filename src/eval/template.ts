import { UserError } from '../util/errors.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Field names a template refers to, for validating task files before any model work. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * The task-file template language: `{{name}}` is replaced by the document's field `name`;
 * everything else is literal. A missing field is an error (naming `where`), never an empty string.
 */
export function render(template: string, vars: Readonly<Record<string, string>>, where: string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new UserError(`${where}: template refers to {{${name}}}, which this task's documents lack (fields: ${Object.keys(vars).join(', ')})`);
    return v;
  });
}
