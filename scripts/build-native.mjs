// Builds the native engines during `npm ci` / `npm install`: the C++ addon (native/, node-gyp),
// the CUDA engine on the SIMT simulator (native/cuda/sim: g++ only; CPT_CUDA_SIM=1 runs it) and,
// where a CUDA compiler is found, the CUDA engine's library (native/cuda/, nvcc). Never fails
// the install: on failure it prints a loud reason with the fix and records it for nativeStatus()
// and cudaStatus().
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cudaRoots } from './cuda-roots.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const native = path.join(root, 'native');
const failFile = path.join(native, 'build', 'BUILD_FAILED.txt');
const FIX = 'install a C++ toolchain (Debian/Ubuntu: apt-get install g++ make python3), then run: npm run build:native';

function fail(reason, detail = '') {
  fs.mkdirSync(path.dirname(failFile), { recursive: true });
  fs.writeFileSync(failFile, `${reason}; ${FIX}\n${detail}`);
  const bar = '!'.repeat(78);
  console.error(`\n${bar}\ncpt: the native C++ engine was NOT built: ${reason}.\n` +
    `  Fix: ${FIX}\n  Until then only the (much slower) tfjs engine is available.\n${bar}\n`);
  if (detail) console.error(detail.split('\n').slice(-25).join('\n'));
  process.exit(0);
}

if (process.env.CPT_SKIP_NATIVE === '1') fail('skipped because CPT_SKIP_NATIVE=1');
for (const [tool, args] of [['g++', ['--version']], ['make', ['--version']], ['python3', ['--version']]]) {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) fail(`"${tool}" was not found on PATH`);
}

// Headers: prefer a local Node install (nothing may be downloaded); node-gyp's cache otherwise.
const args = [path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), 'rebuild', '--directory', native];
const localHeaders = ['/usr', path.resolve(path.dirname(process.execPath), '..')].find((d) =>
  fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')));
if (localHeaders) args.push(`--nodedir=${localHeaders}`);
console.log(`cpt: building the native engine (node-gyp, headers from ${localHeaders ?? 'node-gyp cache'}) ...`);
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, JOBS: 'max' } });
if (r.status !== 0) fail('node-gyp failed to compile native/', `${r.stdout ?? ''}\n${r.stderr ?? ''}`);
try { fs.rmSync(failFile, { force: true }); } catch { /* already gone */ }
console.log('cpt: native engine built: native/build/Release/cpt_native.node');
// CPT_CUDA_STRICT=1 (.ci/run): a kernel that spills registers or uses local memory fails the build
// (native/cuda/Makefile's STRICT), so it fails CI's "was built" tests; elsewhere ptxas only warns.
const STRICT = process.env.CPT_CUDA_STRICT === '1' ? ['STRICT=1'] : [];

buildCudaSim();
buildCuda();
buildCuda11();

// The CUDA engine's own code compiled by g++ against the simulator: what CI tests it with.
function buildCudaSim() {
  const out = path.join(native, 'build-cuda-sim');
  const skipped = path.join(out, 'SKIPPED.txt');
  fs.mkdirSync(out, { recursive: true });
  const r = spawnSync('make', ['-C', path.join(native, 'cuda'), 'sim', `-j${Math.max(1, Math.min(4, os.availableParallelism()))}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.writeFileSync(skipped, `g++ failed to compile native/cuda on the simulator\n${r.stdout ?? ''}\n${r.stderr ?? ''}`);
    console.log('cpt: CUDA simulator build failed (native/build-cuda-sim/SKIPPED.txt)');
    return;
  }
  try { fs.rmSync(skipped, { force: true }); } catch { /* already gone */ }
  console.log('cpt: CUDA engine on the simulator built: native/build-cuda-sim/{libcpt_cuda.so,cuda_check,sim_check}');
}

// The CUDA toolkit: CUDA_HOME, /usr/local/cuda, nvcc on PATH, or NVIDIA's PyPI wheels
// (nvidia-cuda-nvcc, nvidia-cuda-crt, nvidia-nvvm, nvidia-cuda-runtime, nvidia-cuda-cccl,
// nvidia-cublas: CUDA 13, laid out under site-packages/nvidia/cu13).
function findCuda() {
  return cudaRoots().find((r) => fs.existsSync(path.join(r, 'bin', 'nvcc')));
}

function buildCuda() {
  const out = path.join(native, 'build-cuda');
  const skipped = path.join(out, 'SKIPPED.txt');
  fs.mkdirSync(out, { recursive: true });
  const skip = (reason, detail = '') => {
    fs.writeFileSync(skipped, `${reason}\n${detail}`);
    try { fs.rmSync(path.join(out, 'libcpt_cuda.so'), { force: true }); } catch { /* none */ }
    console.log(`cpt: CUDA engine not built: ${reason}`);
    if (detail) console.log(detail.split('\n').slice(-15).join('\n'));
  };
  if (process.env.CPT_SKIP_CUDA === '1') return skip('skipped because CPT_SKIP_CUDA=1');
  const root = findCuda();
  if (!root) return skip('no CUDA compiler found (set CUDA_HOME, or pip install nvidia-cuda-nvcc nvidia-cuda-crt nvidia-nvvm nvidia-cuda-runtime nvidia-cuda-cccl nvidia-cublas), then run: npm run build:native');
  console.log(`cpt: building the CUDA engine (nvcc from ${root}) ...`);
  // The library, and the standalone harness that verify.sh runs on a GPU machine.
  const r = spawnSync('make', ['-C', path.join(native, 'cuda'), 'all', 'harness', `NVCC=${path.join(root, 'bin', 'nvcc')}`, `CUDA_ROOT=${root}`, ...STRICT, `-j${Math.max(1, Math.min(4, os.availableParallelism()))}`], { encoding: 'utf8' });
  if (r.status !== 0) return skip('nvcc failed to compile native/cuda/', `${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  try { fs.rmSync(skipped, { force: true }); } catch { /* already gone */ }
  console.log('cpt: CUDA engine built: native/build-cuda/{libcpt_cuda.so,cuda_check} (run where an NVIDIA GPU and driver are present)');
}

// The compatibility build: the same engine with CUDA 11.8 (native/cuda/fetch-cuda11.sh DIR, then
// CPT_CUDA11_ROOT=DIR), whose runtime works on drivers older than R580, into
// native/build-cuda/cuda11 beside the CUDA 13 one; cpt and verify.sh use it when the driver is older.
function buildCuda11() {
  const root = process.env.CPT_CUDA11_ROOT;
  if (!root) return;
  const out = path.join(native, 'build-cuda', 'cuda11');
  const nvcc = path.join(root, 'usr', 'lib', 'nvidia-cuda-toolkit', 'bin', 'nvcc');
  const hostCxx = spawnSync('sh', ['-c', 'command -v g++-11'], { encoding: 'utf8' }).stdout.trim();
  const why = !fs.existsSync(nvcc) ? `no nvcc at ${nvcc} (run native/cuda/fetch-cuda11.sh ${root})` : !hostCxx ? 'no g++-11 (CUDA 11.8 needs GCC 11 or older: apt-get install g++-11)' : '';
  fs.mkdirSync(out, { recursive: true });
  if (why) {
    fs.writeFileSync(path.join(out, 'SKIPPED.txt'), `${why}\n`);
    return console.log(`cpt: CUDA 11.8 build skipped: ${why}`);
  }
  console.log(`cpt: building the CUDA engine with CUDA 11.8 (${nvcc}) ...`);
  const usr = path.join(root, 'usr');
  const r = spawnSync('make', ['-C', path.join(native, 'cuda'), 'all', 'harness', `NVCC=${nvcc}`, `CUDA_ROOT=${usr}`, `CUDA_INC=${path.join(usr, 'include')}`,
    `CUDA_LIB=${path.join(usr, 'lib', 'x86_64-linux-gnu')}`, `HOSTCXX=${hostCxx}`, 'OUT=../build-cuda/cuda11', ...STRICT, `-j${Math.max(1, Math.min(4, os.availableParallelism()))}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.writeFileSync(path.join(out, 'SKIPPED.txt'), `nvcc 11.8 failed\n${r.stdout ?? ''}\n${r.stderr ?? ''}`);
    return console.log(`cpt: CUDA 11.8 build failed (native/build-cuda/cuda11/SKIPPED.txt)\n${(r.stderr ?? '').split('\n').slice(-15).join('\n')}`);
  }
  fs.rmSync(path.join(out, 'SKIPPED.txt'), { force: true });
  console.log('cpt: CUDA engine built with CUDA 11.8: native/build-cuda/cuda11/{libcpt_cuda.so,cuda_check} (drivers older than R580)');
}
