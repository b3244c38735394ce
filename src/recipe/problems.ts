/** Recipe problems: a key path and a message, turned into `file:line key: message` lines. */
import { closest, distance } from 'fastest-levenshtein';
import type { core } from 'zod';

export type KeyPath = (string | number)[];

export interface Problem {
  path: KeyPath;
  message: string;
  /** For an unknown key: point at the key itself rather than its parent mapping. */
  key?: string;
}

/** `data.corpus[0].path` */
export function formatPath(path: KeyPath): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s || '(top level)';
}

/** How a value reads in a message: strings quoted, containers named. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

export function valueAt(root: unknown, path: KeyPath): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** The closest of `valid` to `key`, if it is close enough to be a plausible typo. */
export function suggest(key: string, valid: readonly string[]): string | undefined {
  if (valid.length === 0) return undefined;
  const best = closest(key.toLowerCase(), valid as string[]);
  const d = distance(key.toLowerCase(), best);
  return d <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}


const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

/**
 * One zod issue → problems in our words. `validKeys` gives the keys allowed at a path (for suggestions
 * on unknown keys).
 */
export function fromZodIssue(issue: core.$ZodIssue, data: unknown, validKeys: (path: KeyPath) => string[]): Problem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const found = valueAt(data, path);
  switch (issue.code) {
    case 'invalid_type': {
      if (found === undefined) return [{ path, message: `missing required key (expected ${TYPE_NAMES[issue.expected] ?? issue.expected})` }];
      const expected = issue.expected === 'number' && typeof found === 'number' ? 'an integer' : TYPE_NAMES[issue.expected] ?? issue.expected;
      return [{ path, message: `expected ${expected}, found ${describe(found)}` }];
    }
    case 'too_small': {
      if (issue.origin === 'array') return [{ path, message: `expected at least ${issue.minimum} item(s), found ${(found as unknown[]).length}` }];
      if (issue.origin === 'string') return [{ path, message: `expected a non-empty string` }];
      const min = Number(issue.minimum);
      const what = min === 0 ? (issue.inclusive ? 'a number >= 0' : 'a positive number') : `a number ${issue.inclusive ? '>=' : '>'} ${min}`;
      return [{ path, message: `expected ${what}, found ${describe(found)}` }];
    }
    case 'too_big': {
      if (issue.origin === 'string') return [{ path, message: `expected at most ${issue.maximum} character(s), found ${describe(found)}` }];
      return [{ path, message: `expected a number ${issue.inclusive ? '<=' : '<'} ${issue.maximum}, found ${describe(found)}` }];
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      if (found === undefined) return [{ path, message: `missing required key (expected one of ${values.join(', ')})` }];
      const near = typeof found === 'string' ? suggest(found, values) : undefined;
      return [{ path, message: `expected one of ${values.join(', ')}; found ${describe(found)}${near ? ` (did you mean "${near}"?)` : ''}` }];
    }
    case 'unrecognized_keys': {
      const valid = validKeys(path);
      return issue.keys.map((k) => {
        const near = suggest(k, valid);
        return {
          path: [...path, k],
          key: k,
          message: near ? `unknown key (did you mean "${near}"?)` : `unknown key; valid keys here: ${valid.join(', ')}`,
        };
      });
    }
    case 'invalid_format':
      return [{ path, message: `expected ${issue.message}, found ${describe(found)}` }];
    case 'custom':
      return [{ path, message: issue.message }];
    default:
      return [{ path, message: `${issue.message}, found ${describe(found)}` }];
  }
}
