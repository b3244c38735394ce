// The engine registry (one place per engine kind) and the CUDA engine where this machine cannot
// run it: built by `npm ci` when a CUDA compiler is found, refused with one line without a GPU.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine, defaultEngineKind, ENGINE_KINDS, ENGINES, parseEngineKind } from '../../src/engine/index.js';
import { ADDON_PATH, CUDA11_LIB_PATH, CUDA_GPU_LIB_PATH, cudaStatus, nativeStatus } from '../../src/engine/native/index.js';
import { parseRecipe } from '../../src/recipe/load.js';
import { UserError } from '../../src/util/errors.js';
import { ROOT } from '../../src/util/paths.js';
import { tinyConfig } from '../native/fixtures.js';

const FILE = path.join(ROOT, 'recipes', 'under-test.yaml');
const recipe = (engine: string) => `method: dacp
data:
  corpus:
    - path: \${CPT_DATA}/corpus/fin/reuters21578
      format: reuters-sgml
model:
  init: pythia-14m
engine:
${engine}`;

describe('engine registry', () => {
  it('lists native, cuda and tfjs, each with a description and a default precision', () => {
    expect(ENGINE_KINDS).toEqual(['native', 'cuda', 'tfjs']);
    for (const k of ENGINE_KINDS) {
      expect(ENGINES[k].describe.length).toBeGreaterThan(10);
      expect(['fp32', 'bf16']).toContain(ENGINES[k].defaultPrecision);
    }
    expect(parseEngineKind('cuda')).toBe('cuda');
    expect(() => parseEngineKind('gpu')).toThrow('--engine: unknown engine "gpu". Should be one of: native, cuda, tfjs');
  });

  it('recipes take engine.kind from the registry; cuda defaults to bf16', () => {
    const cuda = parseRecipe(recipe('  kind: cuda\n  recompute: true'), FILE).recipe.engine;
    expect(cuda).toEqual({ kind: 'cuda', threads: 0, precision: 'bf16', recompute: true });
    const native = parseRecipe(recipe('  kind: native'), FILE).recipe.engine;
    expect(native.precision).toBe('fp32');
    expect(parseRecipe(recipe('  kind: cuda\n  precision: fp32'), FILE).recipe.engine.precision).toBe('fp32');
    expect(() => parseRecipe(recipe('  kind: gpu'), FILE)).toThrow('engine.kind: expected one of native, cuda, tfjs; found "gpu"');
  });

  it('"auto" (defaultEngineKind) is one picker: cuda only on a GPU, never the simulator; else native where built', async () => {
    const kind = await defaultEngineKind();
    expect(kind).toBe(cudaStatus().ok && process.env.CPT_CUDA_SIM !== '1' ? 'cuda' : nativeStatus().ok ? 'native' : 'tfjs');
    const sim = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['-e', "import('./src/engine/index.ts').then(async (m) => console.log(await m.defaultEngineKind()))"], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CPT_CUDA_SIM: '1' } });
    expect(sim.stdout.trim()).toBe(nativeStatus().ok ? 'native' : 'tfjs');
  });

  it('tfjs refuses bf16 with one line', async () => {
    await expect(createEngine('tfjs', tinyConfig(), { precision: 'bf16' })).rejects.toThrow('precision bf16 is not available on the tfjs engine');
  });
});

const noGpu = !cudaStatus().ok;

describe.skipIf(!nativeStatus().ok)('cuda engine without a GPU', () => {
  // .ci/run installs NVIDIA's compiler wheels and sets CPT_EXPECT_CUDA_BUILD=1: there the library
  // must have been built and must load (its cuBLASLt found), failing only for want of a device.
  it.runIf(process.env.CPT_EXPECT_CUDA_BUILD === '1')('npm ci built and links the CUDA library', () => {
    expect(existsSync(CUDA_GPU_LIB_PATH)).toBe(true);
    if (noGpu) expect(cudaStatus().reason).toMatch(/^no CUDA device was found/);
  });

  it.runIf(noGpu)('createEngine("cuda") is a one-line UserError naming what is missing', async () => {
    const e = await createEngine('cuda', tinyConfig()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg.split('\n')).toHaveLength(1);
    expect(msg).toMatch(/^the cuda engine is unavailable: (no CUDA device was found|the CUDA engine was not built)/);
  });

  it.runIf(noGpu && existsSync(CUDA_GPU_LIB_PATH))('cpt train --engine cuda exits 1 with one line before any data work', () => {
    const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, 'src', 'cli', 'main.ts'), 'train', path.join(ROOT, 'recipes', 'ets-dacp-tiny.yaml'), '--engine', 'cuda'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    // With the CUDA 11.8 build beside it (CI builds it), the older driver it needs is the one named.
    const needs = existsSync(CUDA11_LIB_PATH) ? 'R520 or newer \\(CUDA 11\\.8; R450 works without PTX JIT\\)' : 'R580 or newer \\(CUDA 13\\)';
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^cpt: the cuda engine is unavailable: no CUDA device was found \\(.+\\); this needs an NVIDIA GPU with its driver, ${needs}$`))]);
  });

  it('cpt train --precision takes fp32 or bf16 only, in one line before any data work', () => {
    const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, 'src', 'cli', 'main.ts'), 'train', path.join(ROOT, 'recipes', 'ets-dacp-tiny.yaml'), '--precision', 'fp16'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['cpt: --precision: expected fp32 or bf16, got "fp16"']);
  });

  // The library finds cuBLASLt itself (test/cuda/cublaslt.test.ts); the addon only has to load it.
  it("a CUDA library that cannot be loaded is named, with the loader's reason", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-cuda-'));
    writeFileSync(path.join(dir, 'fake.so'), 'not an ELF file');
    const probe = `try { require(${JSON.stringify(ADDON_PATH)}).cudaProbe(${JSON.stringify(path.join(dir, 'fake.so'))}, 0) } catch (e) { console.log(e.message) }`;
    const out = execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    expect(out.trim()).toMatch(new RegExp(`^cannot load the CUDA engine ${path.join(dir, 'fake.so')}: .*(invalid ELF header|file too short)`));
  });
});
