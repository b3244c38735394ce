/**
 * cpt as files that run where there is no npm and no Node: the CLI and its tokenizer worker
 * bundled by esbuild into dist/cpt/ (two levels below the checkout, so ROOT, the addon and the
 * CUDA library resolve as from source), plus, with --node, this Node binary xz-compressed into
 * native/build-cuda/node.xz. native/cuda/verify.sh runs `cpt train` with them on a GPU machine.
 *   npm run bundle:cli [-- --node]
 * Train and score verbs only: the tfjs engine and the similarity scorer's ONNX models stay out.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { ROOT } from '../src/util/paths.js';

export const BUNDLE_DIR = path.join(ROOT, 'dist', 'cpt');
export const NODE_XZ = path.join(ROOT, 'native', 'build-cuda', 'node.xz');

export async function bundleCli(out = BUNDLE_DIR): Promise<void> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { cpt: path.join(ROOT, 'src/cli/main.ts'), 'tokenizer-worker': path.join(ROOT, 'src/data/tokenizer-worker.ts') },
    outdir: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    splitting: true, // what is imported lazily (the tfjs engine, the scorers) loads only when used
    target: 'node20',
    logLevel: 'warning',
    loader: { '.node': 'copy' },
    external: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs', '@xenova/transformers'],
    // CommonJS dependencies bundled into ESM still ask for require and __dirname.
    banner: {
      js: [
        "import { createRequire as __cptRequire } from 'node:module';",
        "import { fileURLToPath as __cptPath } from 'node:url';",
        "const require = __cptRequire(import.meta.url);",
        "const __dirname = __cptPath(new URL('.', import.meta.url));",
      ].join(' '),
    },
  });
  writeFileSync(path.join(out, 'package.json'), '{ "type": "module" }\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { node: { type: 'boolean', default: false } } });
  await bundleCli();
  console.log(`wrote ${path.relative(ROOT, BUNDLE_DIR)}/cpt.js (run: node ${path.relative(ROOT, BUNDLE_DIR)}/cpt.js --help)`);
  if (values.node) {
    mkdirSync(path.dirname(NODE_XZ), { recursive: true });
    writeFileSync(NODE_XZ, execFileSync('xz', ['-9', '-T0', '-c', process.execPath], { maxBuffer: 1 << 30 }));
    console.log(`wrote ${path.relative(ROOT, NODE_XZ)} (Node ${process.version})`);
  }
}
