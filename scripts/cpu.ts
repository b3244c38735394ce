/** This machine's CPU as benchmarks name it: model name, the vector extensions cpt dispatches on, and the kind. */
import { readFileSync } from 'node:fs';

export interface CpuInfo { model: string; kind: 'AMX' | 'AVX512-BF16' | 'AVX-512' | 'AVX2' | 'other'; features: string[] }

export function cpuInfo(text = readFileSync('/proc/cpuinfo', 'utf8')): CpuInfo {
  const model = /model name\s*:\s*(.*)/.exec(text)?.[1]?.trim() ?? 'unknown CPU';
  const flags = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/));
  const has = { AMX: flags.has('amx_bf16') && flags.has('amx_tile'), 'AVX512-BF16': flags.has('avx512_bf16'), 'AVX-512': flags.has('avx512f'), AVX2: flags.has('avx2') && flags.has('fma') };
  const features = (Object.keys(has) as (keyof typeof has)[]).filter((k) => has[k]);
  return { model, kind: features[0] ?? 'other', features };
}

/** "Intel(R) Xeon(R) Processor (AMX, AVX512-BF16, AVX-512, AVX2)" */
export function describeCpu(c = cpuInfo()): string {
  return `${c.model} (${c.features.join(', ') || 'no AVX2'})`;
}
