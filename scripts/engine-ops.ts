/**
 * Generates src/engine/ops.ts, the TypeScript side of the engines' operation table, from
 * native/src/ops.h (the one place an operation is declared):
 *   npm run engine:ops              rewrite src/engine/ops.ts
 *   npm run engine:ops -- --check   exit 1 when it differs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../src/util/paths.js';

export const OPS_H = path.join(ROOT, 'native', 'src', 'ops.h');
export const OPS_TS = path.join(ROOT, 'src', 'engine', 'ops.ts');

export interface OpEntry {
  method: string;
  cName: string;
  result: 'OUT' | 'LOSS';
  params: { name: string; type: string; optional: boolean }[];
  doc: string;
}

/** C parameter types and the TypeScript types the binding takes for them. */
const TS_TYPE: Record<string, string> = { double: 'number', int: 'number', 'const int32_t*': 'Int32Array', 'const float*': 'Float32Array' };

/** Splits on commas outside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0, cur = '';
  for (const ch of s) {
    if (ch === ',' && depth === 0) (out.push(cur.trim()), (cur = ''));
    else {
      depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
      cur += ch;
    }
  }
  out.push(cur.trim());
  return out;
}
const unparen = (s: string) => s.replace(/^\(\s*,?\s*/, '').replace(/\s*\)$/, '');

export function parseOps(text = readFileSync(OPS_H, 'utf8')): OpEntry[] {
  const body = /#define CPT_OPS\(X\)([\s\S]*?)\n\n/.exec(text)?.[1];
  if (!body) throw new Error(`${OPS_H}: no CPT_OPS(X) table`);
  const flat = body.replace(/\\\n/g, '\n');
  const ops: OpEntry[] = [];
  for (const m of flat.matchAll(/\/\*([\s\S]*?)\*\/\s*X\(((?:[^()]|\((?:[^()]|\([^()]*\))*\))*)\)/g)) {
    const [method, cName, result, , params, , jsArgs] = splitTop(m[2].replace(/\s+/g, ' '));
    if (result !== 'OUT' && result !== 'LOSS') throw new Error(`${OPS_H}: ${method}: result ${result} is neither OUT nor LOSS`);
    const readers = unparen(jsArgs) ? splitTop(unparen(jsArgs)) : [];
    const ps = unparen(params) ? splitTop(unparen(params)) : [];
    ops.push({
      method,
      cName,
      result,
      params: ps.map((p, i) => {
        const name = /(\w+)$/.exec(p)![1];
        const type = TS_TYPE[p.slice(0, -name.length).trim()];
        if (!type) throw new Error(`${OPS_H}: ${method}: parameter type of "${p}" has no TypeScript type`);
        // jsNumber(info, 3, 1): one argument more than the reader needs is the default
        const optional = /^jsNumber\(/.test(readers[i] ?? '') && splitTop(readers[i].slice(9, -1)).length === 3;
        return { name, type, optional };
      }),
      doc: m[1].replace(/\s+/g, ' ').trim().replace(/^\w+: /, ''),
    });
  }
  return ops;
}

export function opsTs(ops = parseOps()): string {
  const lines = [
    '// Generated from native/src/ops.h by `npm run engine:ops`; a test checks it is current. Do not edit.',
    '',
    '/** The batch operations every engine implements (native/src/ops.h), in its order. */',
    `export const ENGINE_OPS = [${ops.map((o) => `'${o.method}'`).join(', ')}] as const;`,
    'export type EngineOp = (typeof ENGINE_OPS)[number];',
    '',
    '/** ids: [batch, seq] int32, row-major; position t predicts ids[t + 1]. All calls are synchronous. */',
    'export interface EngineOps {',
  ];
  for (const o of ops) {
    const ps = ['ids: Int32Array', 'batch: number', 'seq: number', ...o.params.map((p) => `${p.name}${p.optional ? '?' : ''}: ${p.type}`)];
    lines.push(`  /** ${o.doc} */`, `  ${o.method}(${ps.join(', ')}): ${o.result === 'OUT' ? 'Float32Array' : 'number'};`);
  }
  lines.push('}', '');
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const want = opsTs();
  let have = '';
  try {
    have = readFileSync(OPS_TS, 'utf8');
  } catch { /* first generation */ }
  if (have === want) process.exit(0);
  if (process.argv.includes('--check')) {
    console.log(`differs: ${path.relative(ROOT, OPS_TS)} (npm run engine:ops)`);
    process.exit(1);
  }
  writeFileSync(OPS_TS, want);
  console.log(`wrote ${path.relative(ROOT, OPS_TS)}`);
}
