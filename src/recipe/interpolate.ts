/**
 * `${NAME}` in recipe strings: `${CPT_DATA}` is the data kit directory, anything else an environment
 * variable (`${NAME:-fallback}` when it may be unset). `$${` writes a literal `${`.
 */
import type { KeyPath, Problem } from './problems.js';

const VAR = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}?/g;

export function interpolateString(s: string, vars: Record<string, string | undefined>): { value: string; errors: string[] } {
  const errors: string[] = [];
  const value = s.replace(VAR, (m, name: string | undefined, fallback: string | undefined) => {
    if (m === '$${') return '${';
    if (name === undefined) {
      errors.push(`malformed variable "${m}" (expected \${NAME}, NAME made of letters, digits and _)`);
      return m;
    }
    const v = vars[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    errors.push(`\${${name}} is not set (set the environment variable, or write \${${name}:-default})`);
    return m;
  });
  return { value, errors };
}

/** Interpolate every string in a parsed YAML value, in place; problems carry their key paths. */
export function interpolateTree(root: unknown, vars: Record<string, string | undefined>): Problem[] {
  const problems: Problem[] = [];
  const walk = (v: unknown, path: KeyPath): unknown => {
    if (typeof v === 'string') {
      const r = interpolateString(v, vars);
      for (const message of r.errors) problems.push({ path, message });
      return r.value;
    }
    if (Array.isArray(v)) {
      v.forEach((x, i) => (v[i] = walk(x, [...path, i])));
    } else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = walk(o[k], [...path, k]);
    }
    return v;
  };
  walk(root, []);
  return problems;
}
