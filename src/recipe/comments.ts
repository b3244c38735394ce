/**
 * The comments of a recipe file, generated from the schema (each section's `doc`: what a key
 * means, with its type and default derived from the schema), so no shipped recipe can drift from
 * what cpt does. `npm run recipes:comments` rewrites them; a test checks every recipe.
 *
 * Line-based, so values and layout stay exactly as written: the comment lines directly above a
 * key (or above a commented-out example key, `# max_steps: 1000`) are replaced; any other comment
 * (a file's header, notes separated by a blank line, comments inside lists) is kept.
 */
import { z } from 'zod';
import { keysAt, RawRecipeSchema, unwrap, type KeyDoc } from './schema.js';

const WIDTH = 100;

type Def = { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; entries?: Record<string, string>; innerType?: z.ZodType; defaultValue?: unknown };
const def = (t: z.ZodType) => t._zod.def as unknown as Def;

/** The schema of the key at `path` (as declared, meta attached), or undefined. */
function fieldAt(path: string[]): z.ZodType | undefined {
  let node: z.ZodType = RawRecipeSchema;
  let field: z.ZodType | undefined;
  for (const p of path) {
    const d = def(unwrap(node));
    if (d.type !== 'object' || !d.shape?.[p]) return undefined;
    field = node = d.shape[p];
  }
  return field;
}

function typeText(t: z.ZodType): string | undefined {
  const u = unwrap(t), d = def(u);
  switch (d.type) {
    case 'enum': return Object.values(d.entries!).join(' | ');
    case 'string': return 'str';
    case 'boolean': return 'bool';
    case 'number': return (u as z.ZodNumber).isInt ? 'int' : 'float';
    case 'array': return `list of ${typeText(d.element!) ?? 'items'}`;
    default: return undefined;
  }
}

/** The schema's default for a key (through its optional/default wrappers), or undefined. */
function schemaDefault(t: z.ZodType): unknown {
  for (let d = def(t); ; d = def(d.innerType!)) {
    if (d.type === 'default') return d.defaultValue;
    if (!d.innerType) return undefined;
  }
}

function defaultText(t: z.ZodType): string {
  const v = schemaDefault(t);
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'number') return /e/.test(String(v)) ? String(v).replace(/^(-?\d+)e/, '$1.0e') : String(v);
  if (v !== undefined && typeof v !== 'object') return String(v);
  return def(t).type === 'optional' || def(t).type === 'pipe' ? 'none' : 'required';
}

/** The comment lines (without indent or `# `) for the key at `path`; undefined for keys the schema does not document. */
export function keyComment(path: string[]): string[] | undefined {
  const t = fieldAt(path);
  const meta = t && (z.globalRegistry.get(t) as KeyDoc | undefined);
  if (!t || !meta?.description) return undefined;
  const section = def(unwrap(t)).type === 'object';
  const type = meta.type ?? typeText(t);
  const text = section ? meta.description : `${meta.description} (type: ${type}, ${meta.default === undefined && defaultText(t) === 'required' ? 'required' : `default: ${meta.default ?? defaultText(t)}`})`;
  return wrap(text, WIDTH - 2 * (path.length - 1) - 2);
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const w of text.split(' ')) {
    if (cur && cur.length + 1 + w.length > width) lines.push(cur), (cur = w);
    else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines;
}

const KEY = /^( *)([a-z_][a-z0-9_]*):(?: |$)/;
/** A commented-out example key: `# key: value` with a one-word value (prose after a colon has spaces). */
const EXAMPLE = /^( *)# ([a-z_][a-z0-9_]*): (\S+)$/;

/** `text` (a recipe file) with every documented key's comment block regenerated. */
export function withGeneratedComments(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  const stack: { indent: number; key: string }[] = [];
  const pathFor = (indent: number, key: string): string[] => {
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    return [...stack.map((s) => s.key), key];
  };
  const parent = (indent: number): string[] => stack.filter((s) => s.indent < indent).map((s) => s.key);
  /** An example key line: `# key: value` naming a key documented at that place. */
  const example = (line: string): RegExpExecArray | null => {
    const m = EXAMPLE.exec(line);
    return m && keyComment([...parent(m[1].length), m[2]]) ? m : null;
  };
  for (const line of lines) {
    const m = KEY.exec(line) ?? example(line);
    if (m) {
      const indent = m[1].length;
      const path = pathFor(indent, m[2]);
      const comment = keyComment(path);
      if (comment) {
        // Drop the comment lines directly above (same indent, not themselves example keys).
        while (out.length && out[out.length - 1].startsWith(`${m[1]}#`) && !example(out[out.length - 1])) out.pop();
        out.push(...comment.map((c) => `${m[1]}# ${c}`));
      }
      if (!line.trimStart().startsWith('#')) stack.push({ indent, key: m[2] });
    }
    out.push(line);
  }
  return out.join('\n');
}

/** Every documented key as a markdown table per section (docs/recipe-keys.md), from the same schema as the comments. */
export function keyTable(): string {
  const row = (at: string[]) => {
    const t = fieldAt(at)!;
    const meta = z.globalRegistry.get(t) as KeyDoc;
    const d = meta.default ?? defaultText(t);
    const cell = (s: string) => s.replace(/\|/g, '\\|');
    return `| \`${at.join('.')}\` | ${cell(meta.type ?? typeText(t) ?? '')} | ${cell(d)} | ${cell(meta.description)} |`;
  };
  const head = ['| key | type | default | meaning |', '|---|---|---|---|'];
  const out = ['# Recipe keys', '', 'Generated from the schema of each stage (`npm run recipes:comments` rewrites this page and the', "shipped recipes' comments; a test fails when either differs).", ''];
  const top = keysAt([]);
  out.push('## Top level', '', ...head, ...top.filter((k) => !keysAt([k]).length).map((k) => row([k])), '');
  for (const s of top.filter((k) => keysAt([k]).length)) {
    const meta = z.globalRegistry.get(fieldAt([s])!) as KeyDoc;
    const walk = (at: string[]): string[][] => keysAt(at).flatMap((k) => (keysAt([...at, k]).length ? walk([...at, k]) : [[...at, k]]));
    out.push(`## ${s}`, '', meta.description, '', ...head, ...walk([s]).map(row), '');
  }
  return out.join('\n');
}
