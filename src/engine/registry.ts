/**
 * The engine registry: every engine kind, what it is, its default precision, where it can run and
 * how it is made. The recipe schema, the CLI and the trainer take their lists and checks from
 * here, so a new engine kind is one entry in ENGINES. Implementations load lazily.
 */
import type { NeoXConfig } from '../model/config.js';
import type { Engine, EngineOptions, Precision } from './engine.js';

export { PRECISIONS } from './engine.js';
import { UserError } from '../util/errors.js';

interface EngineEntry {
  /** One line for help texts. */
  describe: string;
  /** What `precision` means when a recipe does not set it. */
  defaultPrecision: Precision;
  /** Training GFLOP/s that `cpt inspect` assumes when no benchmark of this engine is recorded. */
  assumedGflops: number;
  /** Why this engine cannot run here (not built, no device), or undefined when it can. */
  unavailable(): Promise<string | undefined>;
  create(config: NeoXConfig, opts: EngineOptions): Promise<Engine>;
}

export const ENGINES = {
  native: {
    describe: 'C++ on the CPU (AVX-512/AVX2; bf16 on AMX or AVX512-BF16)',
    defaultPrecision: 'fp32',
    assumedGflops: 20,
    async unavailable() {
      const s = (await import('./native/index.js')).nativeStatus();
      return s.ok ? undefined : s.reason;
    },
    async create(config, opts) {
      return (await import('./native/index.js')).createNativeEngine(config, opts);
    },
  },
  cuda: {
    describe: 'CUDA on one NVIDIA GPU (cuBLASLt, bf16 mixed precision)',
    defaultPrecision: 'bf16',
    assumedGflops: 250_000, // ~40% of an A100/H100's dense bf16 peak; not measured (see README)
    async unavailable() {
      return (await import('./native/index.js')).cudaStatus().reason;
    },
    async create(config, opts) {
      return (await import('./native/index.js')).createCudaEngine(config, opts);
    },
  },
  tfjs: {
    describe: 'TensorFlow.js reference (CPU; GPU through the optional tfjs-node-gpu)',
    defaultPrecision: 'fp32',
    assumedGflops: 5,
    async unavailable() {
      return undefined;
    },
    async create(config, opts) {
      if (opts.precision === 'bf16') throw new UserError('precision bf16 is not available on the tfjs engine, which computes in fp32');
      return (await import('./tfjs/index.js')).createTfjsEngine(config, opts);
    },
  },
} as const satisfies Record<string, EngineEntry>;

export type EngineKind = keyof typeof ENGINES;
export const ENGINE_KINDS = Object.keys(ENGINES) as [EngineKind, ...EngineKind[]];

/** "native, cuda or tfjs": the kinds for help texts. */
export const ENGINE_LIST = `${ENGINE_KINDS.slice(0, -1).join(', ')} or ${ENGINE_KINDS[ENGINE_KINDS.length - 1]}`;

/** A kind named by a user (`--engine`, a recipe), checked against the registry. */
export function parseEngineKind(value: string, where = '--engine'): EngineKind {
  if ((ENGINE_KINDS as readonly string[]).includes(value)) return value as EngineKind;
  throw new UserError(`${where}: unknown engine "${value}". Should be one of: ${ENGINE_KINDS.join(', ')}`);
}

/**
 * The engine to use when the user names none (every verb's "auto"): cuda where a GPU and the CUDA
 * library are (never the simulator), else native where it is built, else tfjs.
 */
export async function defaultEngineKind(): Promise<EngineKind> {
  if (process.env.CPT_CUDA_SIM !== '1' && !(await ENGINES.cuda.unavailable())) return 'cuda';
  return (await ENGINES.native.unavailable()) ? 'tfjs' : 'native';
}

