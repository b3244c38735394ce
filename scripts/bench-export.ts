/**
 * npm run bench:export: how fast `cpt export --to neox` writes Megatron indexed datasets from the
 * token cache (tokenization excluded: the cache is filled first), on the DACP tiny recipe (the
 * whole financial corpus, ~5.8 M tokens). Three exports in one process: the first pays for JIT
 * warm-up, the later ones show the steady rate a large export runs at. Ends with name=value lines.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadRecipe } from '../src/recipe/load.js';
import { exportNeox } from '../src/export/neox.js';
import { ROOT } from '../src/util/paths.js';

const r = await loadRecipe(path.join(ROOT, 'recipes', 'dacp-tiny.yaml'));
const out = mkdtempSync(path.join(os.tmpdir(), 'cpt-bench-export-'));
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`bench:export  ${cpu}, ${os.cpus().length} cores, load1=${os.loadavg()[0].toFixed(2)}`);
const rates: number[] = [];
try {
  for (let i = 0; i < 3; i++) {
    const m = await exportNeox(r, { out, gpus: 8, log: () => {} });
    const t = m.files.train!;
    rates.push(t.tokens / t.seconds);
    console.log(`export ${i + 1}: train ${t.tokens} tokens in ${t.seconds.toFixed(3)} s (${(t.tokens / t.seconds / 1e6).toFixed(1)} M tokens/s); all splits ${(m.tokens_per_second / 1e6).toFixed(1)} M tokens/s`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
console.log(`export_train_tok_s_first=${rates[0].toFixed(0)}`);
console.log(`export_train_tok_s=${Math.max(...rates.slice(1)).toFixed(0)}`);
