/**
 * npm run bench:engine [-- --shapes 14m,70m,160m --reps 3 --threads N --kernel auto --no-torch --no-bf16 --eager --isa avx2]
 *
 * Training (fwd + bwd + AdamW) and scoring (fwd-only token logprobs) throughput of the native
 * engine on Pythia shapes (batch 4, seq 512, vocab 50304), achieved GFLOP/s, and the same
 * figures for the PyTorch peer in the same run (scripts/anchors/torch_neox.py: current PyTorch
 * from PyPI in .peers/, Hugging Face GPT-NeoX, SDPA, fused AdamW, torch.compile unless --eager,
 * fp32 and bf16 autocast), with our/peer ratios. Both sides report the mean over --reps timed
 * repetitions after one warm-up (the peer's after its compile), training and scoring apart.
 * Also measures the opt-in bf16 matmul path (precision 'bf16': AMX, else AVX512-BF16) where the
 * CPU has it, with its ratios to the same PyTorch fp32 anchor (`*_bf16` figures) and its speedup
 * over our fp32 in the same run (`bf16_speedup_{train,score}_<shape>`).
 * Names the CPU (model, the vector extensions cpt dispatches on, its kind: AMX, AVX512-BF16,
 * AVX-512 or AVX2). Ends with one name=value line per figure; also writes checkpoints/bench/engine.json
 * (engine-avx2.json under --isa avx2).
 * --isa avx2 stands in for an AVX2-only CPU (AMD Zen 3) on a newer one: cpt runs its AVX2 kernel
 * and the peer is held to AVX2 (ATen and torch.compile's code, oneDNN and MKL), bf16 skipped. It
 * is labelled an emulation: caches, clocks and the FMA units are still this CPU's.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { presetConfig } from '../src/model/presets.js';
import { initWeights } from '../src/model/init.js';
import type { NeoXConfig } from '../src/model/config.js';
import { createNativeEngine, nativeStatus, type NativeKernel, type NativePrecision } from '../src/engine/native/index.js';
import { ROOT } from '../src/util/paths.js';
import { writeFileAtomicSync } from '../src/util/atomic.js';
import { cpuInfo, describeCpu } from './cpu.js';

const { values: a } = parseArgs({
  options: {
    shapes: { type: 'string', default: '14m,70m,160m' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    kernel: { type: 'string', default: process.env.CPT_NATIVE_KERNEL || 'auto' },
    batch: { type: 'string', default: '4' },
    seq: { type: 'string', default: '512' },
    'no-torch': { type: 'boolean', default: false },
    'no-bf16': { type: 'boolean', default: false },
    eager: { type: 'boolean', default: false },
    isa: { type: 'string' },
  },
});
if (a.isa !== undefined && a.isa !== 'avx2') {
  console.error(`--isa: expected avx2, got ${a.isa}`);
  process.exit(2);
}
const emulateAvx2 = a.isa === 'avx2';
if (emulateAvx2) a.kernel = 'avx2', a['no-bf16'] = true;
const shapes = a.shapes!.split(',');
const reps = Number(a.reps), threads = Number(a.threads), B = Number(a.batch), T = Number(a.seq);
/** The peer's environment: threads, and under --isa avx2 every PyTorch back end held to AVX2,
 *  with its own inductor cache (kernels compiled for AVX-512 were otherwise reused, and failed). */
const peerEnv = { ...process.env, THREADS: String(threads),
  ...(emulateAvx2 ? { ATEN_CPU_CAPABILITY: 'avx2', ONEDNN_MAX_CPU_ISA: 'AVX2', MKL_ENABLE_INSTRUCTIONS: 'AVX2',
    TORCHINDUCTOR_CACHE_DIR: path.join(os.tmpdir(), 'cpt-inductor-avx2') } : {}) };
const ANCHOR = path.join(ROOT, 'scripts', 'anchors', 'torch_neox.py');
const PY = process.env.CPT_PEER_PYTHON || (fs.existsSync(path.join(ROOT, '.peers', 'bin', 'python')) ? path.join(ROOT, '.peers', 'bin', 'python') : 'python3');

/** Model FLOPs of one forward pass over B x T tokens (matmuls only; causal attention pairs). */
function forwardFlops(c: NeoXConfig): number {
  const D = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers, N = B * T;
  const dense = 2 * N * (L * (4 * D * D + 2 * D * I) + D * c.vocab_size);
  const attn = L * B * 2 * 2 * D * (T * (T + 1)) / 2;
  return dense + attn;
}

interface Figures { train_tok_s: number; score_tok_s: number; train_gflops: number; score_gflops: number }

function benchNative(shape: string, precision: NativePrecision): Figures & { kernel: string; precision: string; bf16Kernel: string } {
  const c = presetConfig(`pythia-${shape}`);
  const e = createNativeEngine(c, { threads, kernel: a.kernel as NativeKernel, precision });
  e.loadWeights(initWeights(c, 0));
  let s = 12345;
  const ids = Int32Array.from({ length: B * T }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % c.vocab_size);
  const o = { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1 };
  e.trainStep(ids, B, T);
  e.applyAdamW(o); // warm-up: buffers allocated, pages touched
  let train = 0, score = 0;  // seconds, summed over the reps
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    e.trainStep(ids, B, T);
    e.applyAdamW(o);
    const dt = (performance.now() - t) / 1000;
    train += dt;
    process.stderr.write(`  native ${precision} ${shape} train rep ${r + 1}/${reps}: ${(B * T / dt).toFixed(0)} tok/s\n`);
  }
  // Scoring as selection and evaluation run it, and as the peer measures its forward: fixed
  // weights, after one warm-up call (which packs them).
  e.tokenLogprobs(ids, B, T);
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    e.tokenLogprobs(ids, B, T);
    const dt = (performance.now() - t) / 1000;
    score += dt;
    process.stderr.write(`  native ${precision} ${shape} score rep ${r + 1}/${reps}: ${(B * T / dt).toFixed(0)} tok/s\n`);
  }
  train /= reps, score /= reps;
  const kernel = e.kernel, got = e.precision, bf16Kernel = e.bf16Kernel;
  e.dispose();
  const f = forwardFlops(c);
  return { kernel, precision: got, bf16Kernel, train_tok_s: B * T / train, score_tok_s: B * T / score, train_gflops: 3 * f / train / 1e9, score_gflops: f / score / 1e9 };
}

let torchVersion = '';
function benchTorch(shape: string, precision: NativePrecision): (Figures & { mode: string }) | string {
  const probe = spawnSync(PY, ['-c', 'import torch, transformers'], { encoding: 'utf8' });
  if (probe.status !== 0) return `PyTorch + transformers not installed for ${PY} (python3 -m venv .peers && .peers/bin/pip install -r test/peers/requirements.txt)`;
  const p = spawnSync(PY, [ANCHOR, shape, String(T), String(B), String(reps), precision, a.eager ? 'eager' : 'compile', 'cpu'], { encoding: 'utf8', env: peerEnv });
  const m = /torch=(\S+) .*mode=(\w+) .*train_tok_s=(\d+) fwd_tok_s=(\d+)/.exec(p.stdout ?? '');
  if (p.status !== 0 || !m) return `peer failed (${p.signal ? `killed by ${p.signal}` : `exit ${p.status}`}): ${(p.stderr || p.stdout || '').trim().split('\n').pop()}`;
  torchVersion = m[1];
  const train = Number(m[3]), score = Number(m[4]);
  process.stderr.write(`  torch ${torchVersion} ${m[2]} ${precision} ${shape}: train ${train} tok/s, score ${score} tok/s\n`);
  const f = forwardFlops(presetConfig(`pythia-${shape}`));
  const tok = B * T;
  return { mode: m[2], train_tok_s: train, score_tok_s: score, train_gflops: 3 * f * train / tok / 1e9, score_gflops: f * score / tok / 1e9 };
}

const st = nativeStatus();
if (!st.ok) {
  console.error(`native engine unavailable: ${st.reason}`);
  process.exit(1);
}
const load = os.loadavg()[0];
const cpu = cpuInfo();
console.log(`bench:engine  ${describeCpu(cpu)}, kind ${cpu.kind}, ${new Date().toISOString().slice(0, 10)}`);
if (emulateAvx2) console.log('bench:engine  --isa avx2: an AVX2-only CPU emulated on this one (cpt avx2 kernel; PyTorch ATen, inductor, oneDNN, MKL held to AVX2)');
console.log(`bench:engine  B=${B} T=${T} threads=${threads} reps=${reps} (mean, both sides) cpus=${os.cpus().length} load1=${load.toFixed(2)}` +
  (load > os.cpus().length * 0.75 ? '  [machine is loaded: figures are pessimistic]' : ''));
const figures: Record<string, number> = {};
const report: Record<string, unknown> = { date: new Date().toISOString(), batch: B, seq: T, threads, reps, load1: load, cpu: cpu.model, cpu_kind: cpu.kind, cpu_features: cpu.features, isa: emulateAvx2 ? 'avx2 (emulated)' : 'native' };
for (const shape of shapes) {
  const n = benchNative(shape, 'fp32');
  let h: ReturnType<typeof benchNative> | string = a['no-bf16'] ? 'skipped (--no-bf16)' : benchNative(shape, 'bf16');
  if (typeof h !== 'string' && h.precision !== 'bf16') h = 'unavailable (this CPU has neither AMX-BF16 nor AVX512-BF16)';
  const t = a['no-torch'] ? 'skipped (--no-torch)' : benchTorch(shape, 'fp32');
  const tb = a['no-torch'] || typeof h === 'string' ? 'skipped (no bf16 here or --no-torch)' : benchTorch(shape, 'bf16');
  report[shape] = { native: n, native_bf16: h, torch: t, torch_bf16: tb };
  console.log(`pythia-${shape} native(${n.kernel}): train ${n.train_tok_s.toFixed(0)} tok/s (${n.train_gflops.toFixed(1)} GFLOP/s), ` +
    `score ${n.score_tok_s.toFixed(0)} tok/s (${n.score_gflops.toFixed(1)} GFLOP/s)`);
  Object.assign(figures, {
    [`train_tok_s_${shape}`]: n.train_tok_s, [`score_tok_s_${shape}`]: n.score_tok_s,
    [`train_gflops_${shape}`]: n.train_gflops, [`score_gflops_${shape}`]: n.score_gflops,
  });
  if (typeof t === 'string') {
    console.log(`pythia-${shape} torch: ${t}`);
  } else {
    console.log(`pythia-${shape} torch fp32 (${t.mode}): train ${t.train_tok_s.toFixed(0)} tok/s (${t.train_gflops.toFixed(1)} GFLOP/s), ` +
      `score ${t.score_tok_s.toFixed(0)} tok/s (${t.score_gflops.toFixed(1)} GFLOP/s); ratio train ${(n.train_tok_s / t.train_tok_s).toFixed(2)}x, score ${(n.score_tok_s / t.score_tok_s).toFixed(2)}x`);
    Object.assign(figures, {
      [`torch_train_tok_s_${shape}`]: t.train_tok_s, [`torch_score_tok_s_${shape}`]: t.score_tok_s,
      [`train_ratio_${shape}`]: n.train_tok_s / t.train_tok_s, [`score_ratio_${shape}`]: n.score_tok_s / t.score_tok_s,
    });
  }
  if (typeof h === 'string') {
    console.log(`pythia-${shape} native bf16: ${h}`);
  } else {
    console.log(`pythia-${shape} native bf16 matmuls (${h.bf16Kernel}, fp32 accumulation): train ${h.train_tok_s.toFixed(0)} tok/s (${h.train_gflops.toFixed(1)} GFLOP/s), ` +
      `score ${h.score_tok_s.toFixed(0)} tok/s (${h.score_gflops.toFixed(1)} GFLOP/s)` +
      '');
    Object.assign(figures, {
      [`train_tok_s_${shape}_bf16`]: h.train_tok_s, [`score_tok_s_${shape}_bf16`]: h.score_tok_s,
      [`train_gflops_${shape}_bf16`]: h.train_gflops, [`score_gflops_${shape}_bf16`]: h.score_gflops,
      [`bf16_speedup_train_${shape}`]: h.train_tok_s / n.train_tok_s, [`bf16_speedup_score_${shape}`]: h.score_tok_s / n.score_tok_s,
    });
    console.log(`pythia-${shape} bf16 over fp32: train ${(h.train_tok_s / n.train_tok_s).toFixed(2)}x, score ${(h.score_tok_s / n.score_tok_s).toFixed(2)}x`);
    if (typeof tb !== 'string') {
      console.log(`pythia-${shape} torch bf16 autocast (${tb.mode}): train ${tb.train_tok_s.toFixed(0)} tok/s, score ${tb.score_tok_s.toFixed(0)} tok/s; ` +
        `ratio bf16/bf16: train ${(h.train_tok_s / tb.train_tok_s).toFixed(2)}x, score ${(h.score_tok_s / tb.score_tok_s).toFixed(2)}x`);
      Object.assign(figures, {
        [`torch_train_tok_s_${shape}_bf16`]: tb.train_tok_s, [`torch_score_tok_s_${shape}_bf16`]: tb.score_tok_s,
        [`train_ratio_${shape}_bf16`]: h.train_tok_s / tb.train_tok_s, [`score_ratio_${shape}_bf16`]: h.score_tok_s / tb.score_tok_s,
      });
    }
  }
}
report.figures = figures;
report.torch = torchVersion;
const out = path.join(ROOT, 'checkpoints', 'bench', emulateAvx2 ? 'engine-avx2.json' : 'engine.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
writeFileAtomicSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(ROOT, out)}`);
for (const [k, v] of Object.entries(figures)) console.log(`${k}=${Number.isInteger(v) ? v : v.toFixed(v < 10 ? 2 : 1)}`);
