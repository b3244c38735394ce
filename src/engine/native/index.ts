/**
 * The native engines behind the addon (native/): the C++ CPU engine, and the CUDA engine loaded
 * by the addon from its own library (native/build-cuda/libcpt_cuda.so). Weights, gradients and
 * AdamW moments live in native (or GPU) memory; tensors cross the boundary as Float32Arrays in
 * HF layout, named and ordered by paramSpecs().
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { paramSpecs, derive, type NeoXConfig } from '../../model/config.js';
import type { AdamWOptions, Engine, EngineOptions, OptimizerState, Precision, WeightMap } from '../engine.js';
import { ENGINE_OPS, type EngineOps } from '../ops.js';
import { ROOT } from '../../util/paths.js';
import { UserError } from '../../util/errors.js';
import os from 'node:os';

export type NativeKernel = 'auto' | 'scalar' | 'avx2' | 'avx512';
export type NativePrecision = Precision;
/** Which instructions run bf16 products on the CPU: the best the CPU has, or one forced. */
const BF16_KERNELS = ['auto', 'amx', 'avx512bf16'] as const;
export type Bf16Kernel = (typeof BF16_KERNELS)[number];

export interface NativeEngineOptions extends EngineOptions {
  /** GEMM micro-kernel; default $CPT_NATIVE_KERNEL or "auto" (the widest the CPU supports). */
  kernel?: NativeKernel;
  /**
   * Matmul precision; default $CPT_NATIVE_PRECISION or "fp32". "bf16" runs the model's matmuls
   * (layers and LM head, forward and backward) with bf16 operands and fp32 accumulation on AMX
   * tiles or AVX512-BF16 dot products; weights, gradients, AdamW, layer norms, softmax and loss
   * stay fp32. Opt-in: results differ from fp32 at bf16 precision (~3 significant digits). Where
   * the CPU has neither the engine runs fp32 and its `precision` says so.
   */
  precision?: NativePrecision;
  /** bf16 instructions; default $CPT_NATIVE_BF16 or "auto" (AMX, else AVX512-BF16). */
  bf16Kernel?: Bf16Kernel;
}

/** The addon's object: the batch operations of ops.h (binding.cpp generates them from the same table) and tensor access. */
interface AddonEngine extends EngineOps {
  info(): { kernel: string; threads: number; precision: NativePrecision; bf16Kernel?: string; device?: string; names: string[]; sizes: number[] };
  setTensor(which: number, index: number, data: Float32Array): void;
  getTensor(which: number, index: number): Float32Array;
  getStep(): number;
  setStep(step: number): void;
  zeroGrads(): void;
  applyAdamW(o: AdamWOptions): number;
  dispose(): void;
}
type AddonOptions =
  | { device: 'cpu'; precision: NativePrecision; threads: number; kernel: string; bf16Kernel: Bf16Kernel }
  | { device: 'cuda'; precision: NativePrecision; lib: string; cudaDevice: number; recompute: boolean };
interface Addon {
  NativeEngine: new (cfg: Record<string, number | boolean>, opts: AddonOptions) => AddonEngine;
  /** The CUDA device's name; throws with the reason when the library or a device is missing. */
  cudaProbe(lib: string, device: number): string;
  /** Peak device bytes of one training step + AdamW update, counted by the simulator library. */
  cudaPlan(simLib: string, cfg: Record<string, number | boolean>, bf16: boolean, recompute: boolean, batch: number, seq: number, trace?: string): number;
}

export const ADDON_PATH = path.join(ROOT, 'native', 'build', 'Release', 'cpt_native.node');
/** Written by scripts/build-native.mjs when the build fails: the reason and the fix. */
export const BUILD_FAILURE_PATH = path.join(ROOT, 'native', 'build', 'BUILD_FAILED.txt');

let addon: Addon | undefined;
let loadError: string | undefined;

function load(): Addon | undefined {
  if (addon || loadError) return addon;
  if (!fs.existsSync(ADDON_PATH)) {
    loadError = fs.existsSync(BUILD_FAILURE_PATH)
      ? fs.readFileSync(BUILD_FAILURE_PATH, 'utf8').trim().split('\n')[0]
      : `the addon is not built (${path.relative(ROOT, ADDON_PATH)} missing); run: npm run build:native (needs g++ make python3)`;
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (e) {
    loadError = `cannot load ${ADDON_PATH}: ${(e as Error).message}; rebuild with: npm run build:native`;
  }
  return addon;
}

export function nativeStatus(): { ok: boolean; reason?: string } {
  return load() ? { ok: true } : { ok: false, reason: loadError };
}

/**
 * The CUDA engine's library: built by nvcc for a GPU, or, with CPT_CUDA_SIM=1, the same code
 * built by g++ on the SIMT simulator (native/cuda/sim), which runs it on the CPU.
 */
export const CUDA_GPU_LIB_PATH = path.join(ROOT, 'native', 'build-cuda', 'libcpt_cuda.so');
export const CUDA_SIM_LIB_PATH = path.join(ROOT, 'native', 'build-cuda-sim', 'libcpt_cuda.so');
export const cudaSimulated = (): boolean => process.env.CPT_CUDA_SIM === '1';
export const CUDA_LIB_PATH = cudaSimulated() ? CUDA_SIM_LIB_PATH : CUDA_GPU_LIB_PATH;
/** The same engine built with CUDA 11.8 (native/cuda/fetch-cuda11.sh): for drivers older than R580. */
export const CUDA11_LIB_PATH = path.join(ROOT, 'native', 'build-cuda', 'cuda11', 'libcpt_cuda.so');
/** The library the engine runs on: CUDA_LIB_PATH, or CUDA11_LIB_PATH when cudaStatus found the driver too old for it. */
let cudaLib = CUDA_LIB_PATH;
/** Written by scripts/build-native.mjs when it skips the CUDA engine: the reason and the fix. */
export const CUDA_SKIPPED_PATH = path.join(path.dirname(CUDA_LIB_PATH), 'SKIPPED.txt');

function cudaDevice(): number {
  const v = process.env.CPT_CUDA_DEVICE;
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new UserError(`CPT_CUDA_DEVICE must be a device number, got "${v}"`);
  return Number(v);
}

let cuda: { ok: boolean; reason?: string; device?: string } | undefined;

/** Whether the CUDA engine can run here: built, its libraries found, and a CUDA device present. */
export function cudaStatus(): { ok: boolean; reason?: string; device?: string } {
  if (cuda) return cuda;
  const a = load();
  if (!a) return (cuda = { ok: false, reason: `the native addon is not available (${loadError})` });
  if (!fs.existsSync(CUDA_LIB_PATH)) {
    const why = fs.existsSync(CUDA_SKIPPED_PATH) ? fs.readFileSync(CUDA_SKIPPED_PATH, 'utf8').trim().split('\n')[0] : `${path.relative(ROOT, CUDA_LIB_PATH)} is missing`;
    return (cuda = { ok: false, reason: `the CUDA engine was not built: ${why}` });
  }
  try {
    return (cuda = { ok: true, device: a.cudaProbe(CUDA_LIB_PATH, cudaDevice()) });
  } catch (e) {
    // CUDA 13's runtime needs driver R580+: an older driver gets the CUDA 11.8 build, if built.
    if (cudaSimulated() || !/insufficient for CUDA runtime/.test((e as Error).message) || !fs.existsSync(CUDA11_LIB_PATH)) return (cuda = { ok: false, reason: (e as Error).message });
    try {
      const device = a.cudaProbe(CUDA11_LIB_PATH, cudaDevice());
      cudaLib = CUDA11_LIB_PATH;
      return (cuda = { ok: true, device: `${device} (CUDA 11.8 build)` });
    } catch (e11) {
      return (cuda = { ok: false, reason: (e11 as Error).message });
    }
  }
}

const WEIGHTS = 0, GRADS = 1, M1 = 2, M2 = 3;

function addonConfig(config: NeoXConfig): Record<string, number | boolean> {
  const d = derive(config);
  if (!Number.isInteger(d.headDim)) throw new UserError(`hidden_size ${config.hidden_size} is not divisible by num_attention_heads ${config.num_attention_heads}`);
  return {
    hidden: config.hidden_size, layers: config.num_hidden_layers, heads: config.num_attention_heads,
    inter: config.intermediate_size, vocab: config.vocab_size, rotaryPct: config.rotary_pct,
    rotaryBase: config.rotary_emb_base, lnEps: config.layer_norm_eps, exactGelu: d.exactGelu,
    parallelResidual: config.use_parallel_residual, tied: config.tie_word_embeddings,
  };
}

/**
 * The most GPU memory the CUDA engine holds at once over one training step and AdamW update of
 * micro_batch × seq_len tokens: its own cudaMalloc calls, counted by the simulator build in plan
 * mode (nothing executes, no memory is touched, any model size). The CUDA context and cuBLASLt's
 * internal buffers come on top (about 0.5 GiB on current drivers). With `trace`, that step's
 * kernel launches, products and copies are written there as JSON lines (scripts/model-cuda.ts).
 */
export function cudaPeakBytes(config: NeoXConfig, o: { precision: Precision; recompute: boolean; microBatch: number; seqLen: number }, trace?: string): number {
  const a = load();
  if (!a) throw new UserError(`the native addon is unavailable: ${loadError}`);
  if (!fs.existsSync(CUDA_SIM_LIB_PATH)) throw new UserError(`${path.relative(ROOT, CUDA_SIM_LIB_PATH)} is missing (run: npm run build:native)`);
  return a.cudaPlan(CUDA_SIM_LIB_PATH, addonConfig(config), o.precision === 'bf16', o.recompute, o.microBatch, o.seqLen, trace);
}

// The batch operations are defined on the prototype from the table (the static block below).
interface NativeEngine extends EngineOps {}
class NativeEngine implements Engine {
  /**
   * "native-cpu", "native-cpu-bf16" when the CPU matmuls run in bf16, "cuda" or "cuda-bf16"
   * (checkpoints record it).
   */
  readonly name: string;
  readonly kernel: string;
  readonly threads: number;
  /** The precision the matmuls actually run in (bf16 only where requested and supported). */
  readonly precision: NativePrecision;
  /** CPU: the bf16 instructions in use ("amx", "avx512bf16" or "none"). */
  readonly bf16Kernel: string;
  /** CUDA: the GPU's name. */
  readonly device?: string;
  private readonly names: string[];
  private readonly index: Map<string, number>;
  private e: AddonEngine | undefined;

  constructor(readonly config: NeoXConfig, a: Addon, opts: AddonOptions) {
    try {
      this.e = new a.NativeEngine(addonConfig(config), opts);
    } catch (e) {
      throw new UserError(`${opts.device === 'cuda' ? 'cuda' : 'native'} engine: ${(e as Error).message}`);
    }
    const info = this.e.info();
    this.kernel = info.kernel;
    this.threads = info.threads;
    this.precision = info.precision;
    this.bf16Kernel = info.bf16Kernel ?? 'none';
    this.device = info.device;
    const base = opts.device === 'cuda' ? 'cuda' : 'native-cpu';
    this.name = info.precision === 'bf16' ? `${base}-bf16` : base;
    // The C++ side builds the same table; a mismatch is a bug, not a user error.
    const specs = paramSpecs(config);
    const same = specs.length === info.names.length && specs.every((s, i) => s.name === info.names[i] && s.shape.reduce((x, y) => x * y, 1) === info.sizes[i]);
    if (!same) throw new Error(`${base} engine parameter table differs from paramSpecs()`);
    this.names = specs.map((s) => s.name);
    this.index = new Map(this.names.map((n, i) => [n, i]));
  }

  private get x(): AddonEngine {
    if (!this.e) throw new Error('native engine used after dispose()');
    return this.e;
  }

  private setAll(which: number, w: WeightMap, what: string): void {
    for (const [i, n] of this.names.entries()) {
      const t = w.get(n);
      if (!t) throw new UserError(`${what}: missing tensor "${n}"`);
      this.x.setTensor(which, i, t);
    }
    for (const n of w.keys()) if (!this.index.has(n) && !(n === 'embed_out.weight' && this.config.tie_word_embeddings)) throw new UserError(`${what}: unexpected tensor "${n}"`);
  }
  private getAll(which: number): WeightMap {
    return new Map(this.names.map((n, i) => [n, this.x.getTensor(which, i)]));
  }

  loadWeights(w: WeightMap): void { this.setAll(WEIGHTS, w, 'loadWeights'); }
  exportWeights(): WeightMap { return this.getAll(WEIGHTS); }
  exportGrads(): WeightMap { return this.getAll(GRADS); }
  zeroGrads(): void { this.x.zeroGrads(); }

  // Each batch operation of the table goes straight to the addon, which checks and converts its arguments.
  static {
    for (const op of ENGINE_OPS) {
      Object.defineProperty(this.prototype, op, {
        value(this: NativeEngine, ...args: unknown[]) {
          return (this.x[op] as (...a: unknown[]) => unknown).apply(this.x, args);
        },
      });
    }
  }

  applyAdamW(o: AdamWOptions): { gradNorm: number } { return { gradNorm: this.x.applyAdamW(o) }; }

  exportOptimizer(): OptimizerState {
    return { step: this.x.getStep(), m: this.getAll(M1), v: this.getAll(M2) };
  }
  importOptimizer(s: OptimizerState): void {
    this.setAll(M1, s.m, 'importOptimizer (m)');
    this.setAll(M2, s.v, 'importOptimizer (v)');
    this.x.setStep(s.step);
  }

  dispose(): void {
    this.e?.dispose();
    this.e = undefined;
  }
}

export type NativeEngineHandle = Engine & { kernel: string; threads: number; precision: NativePrecision; bf16Kernel: string; device?: string };

export function createNativeEngine(config: NeoXConfig, opts: NativeEngineOptions = {}): NativeEngineHandle {
  const a = load();
  if (!a) throw new UserError(`the native engine is unavailable: ${loadError}`);
  const threads = opts.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new UserError(`threads must be a positive integer, got ${threads}`);
  const kernel = opts.kernel ?? ((process.env.CPT_NATIVE_KERNEL as NativeKernel | undefined) || 'auto');
  const precision = opts.precision ?? ((process.env.CPT_NATIVE_PRECISION as NativePrecision | undefined) || 'fp32');
  if (precision !== 'fp32' && precision !== 'bf16') throw new UserError(`native precision must be "fp32" or "bf16", got "${precision}" (option precision or $CPT_NATIVE_PRECISION)`);
  const bf16Kernel = opts.bf16Kernel ?? ((process.env.CPT_NATIVE_BF16 as Bf16Kernel | undefined) || 'auto');
  if (!BF16_KERNELS.includes(bf16Kernel)) throw new UserError(`native bf16 kernel must be one of ${BF16_KERNELS.join(', ')}, got "${bf16Kernel}" (option bf16Kernel or $CPT_NATIVE_BF16)`);
  return new NativeEngine(config, a, { device: 'cpu', precision, threads, kernel, bf16Kernel });
}

/** The CUDA engine (bf16 unless precision says fp32); refused with the reason where it cannot run. */
export function createCudaEngine(config: NeoXConfig, opts: EngineOptions = {}): NativeEngineHandle {
  const st = cudaStatus();
  const a = load();
  if (!st.ok || !a) throw new UserError(`the cuda engine is unavailable: ${st.reason}`);
  return new NativeEngine(config, a, {
    device: 'cuda', precision: opts.precision ?? 'bf16', lib: cudaLib, cudaDevice: cudaDevice(), recompute: opts.recompute ?? false,
  });
}
