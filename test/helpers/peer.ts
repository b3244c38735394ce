/**
 * The Python peers of the interop tests (transformers, safetensors, pyarrow): .ci/run installs
 * them into .peers/ (test/peers/requirements.txt); CPT_PEER_PYTHON names another interpreter.
 * Each test skips with one line where its modules are missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../src/util/paths.js';

export const PEER_PYTHON = process.env.CPT_PEER_PYTHON || (existsSync(path.join(ROOT, '.peers', 'bin', 'python')) ? path.join(ROOT, '.peers', 'bin', 'python') : 'python3');

/** Whether every module imports; prints one line naming what is missing when not. */
export function hasPeer(...modules: string[]): boolean {
  const r = spawnSync(PEER_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8' });
  if (r.status !== 0) console.log(`skipped: ${PEER_PYTHON} lacks ${modules.join(', ')} (pip install -r test/peers/requirements.txt)`);
  return r.status === 0;
}

/** `print(json.dumps(...))` of a Python script, parsed; args are passed as sys.argv[1:]. */
export function runPeer<T>(script: string, ...args: string[]): T {
  const out = execFileSync(PEER_PYTHON, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' } });
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}

/** Versions for the README line "checked against". */
export function peerVersions(...modules: string[]): Record<string, string> {
  return runPeer(`import json, importlib; print(json.dumps({m: importlib.import_module(m).__version__ for m in ${JSON.stringify(modules)}}))`);
}
