// Builds the native engine (native/) during `npm ci` / `npm install`. Never fails the install:
// on failure it prints a loud reason with the fix and records it for nativeStatus().
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
