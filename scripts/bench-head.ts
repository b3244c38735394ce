/**
 * npm run bench:head [-- --shape 70m --seq 2048 --batch 1 --reps 3 --precision fp32 --before REV]
 *
 * Scoring (token log-probs, what perplexity selection and evaluation run) with the native engine:
 * tokens/s and the process's peak RSS (VmHWM), each variant in a fresh process so that the peak is
 * its own. With --before REV, the same in a git worktree of REV with its own addon built there
 * (e.g. the commit before the LM head went by vocabulary blocks), in the same run. Names the CPU.
 * Ends with one name=value line per figure.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/util/paths.js';
import { checkoutBefore } from './worktree.js';
import { describeCpu } from './cpu.js';

const { values: a } = parseArgs({
  options: {
    shape: { type: 'string', default: '70m' },
    seq: { type: 'string', default: '2048' },
    batch: { type: 'string', default: '1' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    precision: { type: 'string', default: 'fp32' },
    before: { type: 'string' },
    child: { type: 'string' }, // internal: the checkout whose engine to measure
  },
});
const B = Number(a.batch), T = Number(a.seq), reps = Number(a.reps), threads = Number(a.threads);

interface Result { tok_s: number; peak_rss_mib: number }

if (a.child) {
  // One variant, measured in this process: the checkout's own engine module and addon.
  const from = (f: string) => import(pathToFileURL(path.join(a.child!, f)).href);
  const { createNativeEngine } = await from('src/engine/native/index.ts');
  const { presetConfig } = await from('src/model/presets.ts');
  const { initWeights } = await from('src/model/init.ts');
  const c = presetConfig(`pythia-${a.shape}`);
  const e = createNativeEngine(c, { threads, precision: a.precision });
  e.loadWeights(initWeights(c, 0));
  let s = 7;
  const ids = Int32Array.from({ length: B * T }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % c.vocab_size);
  e.tokenLogprobs(ids, B, T); // warm-up: buffers, packing
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    e.tokenLogprobs(ids, B, T);
    best = Math.min(best, (performance.now() - t0) / 1e3);
  }
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  const out: Result = { tok_s: (B * T) / best, peak_rss_mib: hwm / 1024 };
  console.log(JSON.stringify(out));
  process.exit(0);
}

function measure(root: string): Result {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(ROOT, 'scripts', 'bench-head.ts'),
    '--child', root, '--shape', a.shape!, '--seq', String(T), '--batch', String(B), '--reps', String(reps), '--threads', String(threads), '--precision', a.precision!], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench-head: measuring ${root} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const cpu = describeCpu();
console.log(`scoring pythia-${a.shape}, [${B}, ${T}] tokens, ${a.precision}, ${threads} threads, best of ${reps}; ${cpu}, ${os.availableParallelism()} cores, ${new Date().toISOString().slice(0, 10)}`);
const rows: [string, Result][] = [];
if (a.before) {
  const { rev, tree } = checkoutBefore(a.before, path.join(os.tmpdir(), 'cpt-bench-head'), 'own');
  rows.push([`before (${rev})`, measure(tree)]);
}
rows.push(['this checkout', measure(ROOT)]);
for (const [what, r] of rows) console.log(`  ${what.padEnd(18)} ${r.tok_s.toFixed(0).padStart(7)} tokens/s   peak RSS ${r.peak_rss_mib.toFixed(0)} MiB`);
const tag = `${a.shape}_${a.precision}_t${T}`;
for (const [what, r] of rows) {
  const k = what.startsWith('before') ? 'before_' : '';
  console.log(`${k}score_tok_s_${tag}=${r.tok_s.toFixed(0)}\n${k}peak_rss_mib_${tag}=${r.peak_rss_mib.toFixed(0)}`);
}
