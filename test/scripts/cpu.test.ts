// Benchmarks name the CPU kind they ran on (issue 29: one table row per kind).
import { describe, it, expect } from 'vitest';
import { cpuInfo, describeCpu } from '../../scripts/cpu.js';

const cpuinfo = (model: string, flags: string) => `processor\t: 0\nmodel name\t: ${model}\nflags\t\t: ${flags}\n`;

describe('cpuInfo', () => {
  it('names the widest kind cpt dispatches on, and every extension it has', () => {
    const spr = cpuInfo(cpuinfo('Intel(R) Xeon(R) Platinum 8480+', 'fpu sse2 avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile'));
    expect(spr.kind).toBe('AMX');
    expect(describeCpu(spr)).toBe('Intel(R) Xeon(R) Platinum 8480+ (AMX, AVX512-BF16, AVX-512, AVX2)');
    expect(cpuInfo(cpuinfo('AMD EPYC 9R14', 'sse2 avx2 fma avx512f avx512_bf16')).kind).toBe('AVX512-BF16');
    expect(cpuInfo(cpuinfo('AMD EPYC 7R13', 'sse2 avx2 fma')).kind).toBe('AVX2');
    expect(cpuInfo(cpuinfo('old', 'sse2')).kind).toBe('other');
  });
});
