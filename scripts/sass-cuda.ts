/**
 * What the attention kernels on mma.sync tiles issue in one pass of their main loop, read from
 * the machine code nvcc built (SASS: cuobjdump and nvdisasm, from NVIDIA's wheels in
 * native/cuda/requirements-build.txt): mma.sync operations (HMMA), fragment loads (LDSM),
 * special-function operations (MUFU: the exponentials) and every other instruction a warp issues
 * beside them: a static count (no GPU has run it), from which the performance model costs their
 * instruction issue (issuePerMma). The loop is the one that holds the most HMMA; its count takes
 * every branch inside it once (the causal mask's, both halves of a split warp group).
 *
 *   npm run sass:cuda [-- --lib native/build-cuda/libcpt_cuda.so --arch sm_90 --json]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/util/paths.js';
import { cudaRoots } from './cuda-roots.mjs';

export const CUDA_LIB = path.join(ROOT, 'native', 'build-cuda', 'libcpt_cuda.so');

/** The directory holding both cuobjdump and nvdisasm (it calls the other): PATH, or a CUDA toolkit's bin (cuda-roots.mjs: CUDA_HOME, /usr/local/cuda, nvcc's, the wheels). */
function sassTools(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...cudaRoots().map((r) => path.join(r, 'bin'))];
  return dirs.find((d) => d && existsSync(path.join(d, 'cuobjdump')) && existsSync(path.join(d, 'nvdisasm')));
}

/** The tools that read `lib`'s machine code, or why it cannot be read here (no library, no tools). */
export function sassReady(lib = CUDA_LIB): { tools: string } | { missing: string } {
  if (!existsSync(lib)) return { missing: `${path.relative(ROOT, lib)} was not built (npm run build:native with a CUDA compiler)` };
  const tools = sassTools();
  return tools ? { tools } : { missing: 'no cuobjdump and nvdisasm (python3 -m pip install -r native/cuda/requirements-build.txt)' };
}

export interface Instr { at: number; op: string }

/** Every kernel of `lib` for `arch`, by its demangled name, as its instructions (predicates dropped). */
export function readSass(lib: string, arch: string, tools: string): Map<string, Instr[]> {
  const r = spawnSync(path.join(tools, 'cuobjdump'), ['-sass', '-arch', arch, lib], { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, PATH: `${tools}:${process.env.PATH ?? ''}` } });
  if (r.status !== 0) throw new Error(`cuobjdump -sass ${lib}: ${r.stderr.trim().split('\n').pop()}`);
  const parts = r.stdout.split(/\n\s*Function : /).slice(1);
  const mangled = parts.map((p) => p.slice(0, p.indexOf('\n')).trim());
  const names = (spawnSync('c++filt', { input: mangled.join('\n'), encoding: 'utf8' }).stdout ?? '').split('\n');
  if (names.length < mangled.length) throw new Error('c++filt (binutils) is needed to name the kernels');
  const out = new Map<string, Instr[]>();
  parts.forEach((p, i) => {
    const code = [...p.matchAll(/\/\*([0-9a-f]{4,})\*\/\s+([^;]*);/g)].map((m) => ({ at: parseInt(m[1]!, 16), op: m[2]!.trim().replace(/^@!?U?P\w+\s+/, '') }));
    out.set(names[i] || mangled[i]!, code);
  });
  return out;
}

/** The loop body (a backward branch's range) holding the most HMMA, the shortest such. */
export function mainLoop(code: Instr[]): Instr[] {
  let best: Instr[] = [], most = -1;
  for (const { at, op } of code) {
    const m = /^BRA\s+(?:`\(.*?\)\s*)?0x([0-9a-f]+)/.exec(op);
    const to = m ? parseInt(m[1]!, 16) : Infinity;
    if (to >= at) continue;
    const body = code.filter((x) => x.at >= to && x.at <= at);
    const hmma = body.filter((x) => x.op.startsWith('HMMA')).length;
    if (hmma > most || (hmma === most && body.length < best.length)) (best = body), (most = hmma);
  }
  return best;
}

export interface Mix { kernel: string; instructions: number; hmma: number; ldsm: number; mufu: number; other: number; expRangeReduction: number }

/** A loop's instructions by kind; expRangeReduction: FFMA.RM, the rounding step of expf's range reduction (ex2 has none). */
export function mix(kernel: string, loop: Instr[]): Mix {
  const n = (p: string) => loop.filter((x) => x.op.startsWith(p)).length;
  const hmma = n('HMMA'), ldsm = n('LDSM'), mufu = n('MUFU');
  return { kernel, instructions: loop.length, hmma, ldsm, mufu, other: loop.length - hmma - ldsm - mufu, expRangeReduction: n('FFMA.RM') };
}

/** The attention kernels' loops: mmaForwardKernel<HD>, mmaBackward{KV,Q}Kernel<HD, H8> as the demangler names them, argument types dropped. */
export function attentionLoops(lib: string, arch: string, tools: string): Mix[] {
  return [...readSass(lib, arch, tools)]
    .map(([name, code]) => [/(mma\w+Kernel<[^>]*>)/.exec(name)?.[1], code] as const)
    .filter((e): e is readonly [string, Instr[]] => !!e[0])
    .map(([kernel, code]) => mix(kernel, mainLoop(code)))
    .sort((a, b) => a.kernel.localeCompare(b.kernel, 'en', { numeric: true }));
}

/**
 * The warp instructions each attention kernel's main loop issues per mma.sync, by `kernel<hd>`
 * (the most over its rotary variants), for the performance model; or why there are none.
 */
export function issuePerMma(lib = CUDA_LIB, arch = 'sm_90'): { perMma: Record<string, number> } | { missing: string } {
  const src = path.join(ROOT, 'native', 'cuda', 'attention.cuh');
  const ready = sassReady(lib);
  if ('missing' in ready) return ready;
  if (statSync(lib).mtimeMs < statSync(src).mtimeMs) return { missing: `${path.relative(ROOT, lib)} is older than native/cuda/attention.cuh (npm run build:native)` };
  const perMma: Record<string, number> = {};
  for (const l of attentionLoops(lib, arch, ready.tools)) {
    const key = l.kernel.replace(/,.*>$/, '>'); // mmaBackwardKVKernel<128, 4> -> mmaBackwardKVKernel<128>
    perMma[key] = Math.max(perMma[key] ?? 0, l.instructions / l.hmma);
  }
  return { perMma };
}

function main(): void {
  const { values } = parseArgs({ options: { lib: { type: 'string', default: CUDA_LIB }, arch: { type: 'string', default: 'sm_90' }, json: { type: 'boolean', default: false } } });
  const ready = sassReady(values.lib!);
  if ('missing' in ready) return (console.error(`sass:cuda: ${ready.missing}`), process.exit(1));
  const loops = attentionLoops(values.lib!, values.arch!, ready.tools);
  if (values.json) return console.log(JSON.stringify(loops, null, 2));
  console.log(`STATIC: the main loop of each attention kernel in ${path.relative(process.cwd(), values.lib!)} (${values.arch}), one pass (a warp's key or query tile), every branch counted once`);
  console.log('kernel                          instructions  HMMA  LDSM  MUFU  other  issued per HMMA');
  for (const m of loops) {
    console.log(`${m.kernel.padEnd(32)}${String(m.instructions).padStart(12)}${String(m.hmma).padStart(6)}${String(m.ldsm).padStart(6)}${String(m.mufu).padStart(6)}${String(m.other).padStart(7)}${(m.instructions / m.hmma).toFixed(2).padStart(17)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
