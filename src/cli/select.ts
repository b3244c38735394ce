import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { loadRecipeDetailed } from '../recipe/load.js';
import type { Recipe } from '../recipe/types.js';
import { prepareCorpus } from '../data/index.js';
import { runSelection, runSelectionWorker } from '../select/index.js';
import { selectionProgress } from '../select/progress.js';
import { endWorkerJob, parseWorker } from '../select/workers.js';
import { emitK8s, emitSlurm } from '../select/launch.js';
import { fmtDuration } from '../util/progress.js';
import { UserError } from '../util/errors.js';
import { ROOT } from '../util/paths.js';

interface SelectFlags {
  force?: boolean;
  rescore?: boolean;
  worker?: string;
  workers?: string;
  emit?: string;
  threads?: string;
  image?: string;
  pvc?: string;
}

function positive(name: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${name}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

/** Set for the workers `--workers` starts: their parent merges, so they do not tell the user to. */
const MERGED_HERE = 'CPT_SELECT_MERGED_BY_PARENT';

/** `--workers N` on this machine: N worker processes, each with its share of the cores, then the merge. */
async function localWorkers(recipe: Recipe, n: number): Promise<void> {
  const corpus = await prepareCorpus(recipe.data.corpus, recipe.data.prepared_dir, { shardMb: recipe.data.shard_mb }); // workers never prepare
  const shards = corpus.shards.length;
  if (n > shards) process.stderr.write(`note: ${n} workers for ${shards} shard${shards === 1 ? '' : 's'}: ${n - shards} will have nothing to score (a smaller data.shard_mb makes more shards)\n`);
  await endWorkerJob(recipe);
  const threads = Math.max(1, Math.floor(os.availableParallelism() / n));
  const t0 = Date.now();
  // SIGINT/SIGTERM reach the workers too (each stops after its shard), and this process waits
  // for them: none is left behind scoring on its own (B74).
  const children: ReturnType<typeof spawn>[] = [];
  let stopped: NodeJS.Signals | null = null;
  const stop = (sig: NodeJS.Signals) => {
    stopped = sig;
    for (const c of children) c.kill(sig);
  };
  process.on('SIGINT', stop).on('SIGTERM', stop);
  const codes = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'cpt.mjs'), 'select', recipe.file, '--worker', `${i}/${n}`, '--threads', String(threads)],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [MERGED_HERE]: '1' } });
    children.push(child);
    // Every line labelled with its worker, so interleaved output still reads.
    for (const [from, to] of [[child.stdout!, process.stdout], [child.stderr!, process.stderr]] as const) {
      createInterface({ input: from, crlfDelay: Infinity }).on('line', (l) => void to.write(`[worker ${i}/${n}] ${l}\n`));
    }
    child.on('close', (code) => resolve(code));
  })));
  process.off('SIGINT', stop).off('SIGTERM', stop);
  if (stopped) {
    process.stderr.write(`cpt select: stopped by ${stopped}; the ${n} workers stopped too (rerun to continue: finished shards are kept)\n`);
    process.exit(stopped === 'SIGINT' ? 130 : 143);
  }
  const failed = codes.flatMap((c, i) => (c === 0 ? [] : [i]));
  if (failed.length) throw new UserError(`worker${failed.length > 1 ? 's' : ''} ${failed.join(', ')} of ${n} failed (see above); rerun: finished shards are kept`);
  process.stderr.write(`cpt select: ${n} workers scored in ${fmtDuration((Date.now() - t0) / 1000)}; merging\n`);
}

export function register(program: Command): void {
  program
    .command('select')
    .argument('<recipe>', 'recipe YAML (method, data, selection)')
    .description('Score the domain corpus and select the training documents (DACP, TACP, ETS-DACP, ETA-DACP, ETS-DACP-com)')
    .option('--force', 'sample and write the selection again even if it is up to date')
    .option('--rescore', 'recompute the document scores even if scores.arrow matches the corpus and settings')
    .option('--worker <I/N>', 'score only shards k with k mod N = I into the shared score cache, then stop (a plain cpt select merges)')
    .option('--workers <n>', 'score with N local worker processes, then merge and sample; with --emit: the number of workers to launch')
    .option('--emit <scheduler>', 'write the launch files for slurm (job array) or k8s (Indexed Job) into <run_dir>/launch/ instead of running')
    .option('--threads <n>', "scoring threads (default: the recipe's engine.threads)")
    .option('--image <image>', 'with --emit k8s: container image with Node 20', 'node:20-bookworm')
    .option('--pvc <claim>', 'with --emit k8s: PersistentVolumeClaim of the shared filesystem', 'cpt-shared')
    .addHelpText(
      'after',
      `
The corpus is tokenized once into <prepared_dir>/tokens/; scores go to
<prepared_dir>/scores/<metric>-<key>/scores.arrow, shared by every run with the same corpus and
scoring settings (hard and soft sampling of one method score once). Writes <run_dir>/selection/:
ids.txt and selection.json (the chosen ids, which \`cpt train\` packs from the token cache),
report.md and histograms. An interrupted scoring resumes from the last completed shard.

Scale-out: \`cpt prepare RECIPE\`, then \`cpt select RECIPE --worker I/N\` for I = 0..N-1 on any
machines sharing the filesystem (any order; a rerun scores only unfinished shards), then
\`cpt select RECIPE\` merges and samples: the selection is bitwise the single-process one.
\`--emit slurm|k8s --workers N\` writes those steps as Slurm or Kubernetes jobs.`,
    )
    .action(async (recipeFile: string, flags: SelectFlags) => {
      const { recipe, notes } = await loadRecipeDetailed(recipeFile);
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      if (flags.threads !== undefined) recipe.engine.threads = positive('--threads', flags.threads, 0);
      const workers = flags.workers === undefined ? undefined : positive('--workers', flags.workers);
      if (flags.emit !== undefined) {
        if (flags.emit !== 'slurm' && flags.emit !== 'k8s') throw new UserError(`--emit: expected slurm or k8s, got "${flags.emit}"`);
        if (workers === undefined) throw new UserError('--emit: give the number of workers with --workers N');
        await endWorkerJob(recipe);
        const l = await (flags.emit === 'slurm' ? emitSlurm : emitK8s)(recipe, { workers, image: flags.image, pvc: flags.pvc });
        process.stdout.write(`wrote ${l.files.map((f) => path.relative(process.cwd(), f)).join(', ')}\nsubmit with: ${l.submit}\n`);
        return;
      }
      const t0 = Date.now();
      const progress = selectionProgress();
      if (flags.worker !== undefined) {
        if (workers !== undefined) throw new UserError('--worker and --workers: give one (--worker I/N runs one worker; --workers N runs N here)');
        const w = parseWorker(flags.worker);
        const r = await runSelectionWorker(recipe, w, { onProgress: progress.onProgress });
        progress.finish();
        process.stdout.write(`worker ${w.index}/${w.count}: scored ${r.scored} of its ${r.owned} shards (${r.owned - r.scored} were done; ${r.shards} in the corpus) in ${fmtDuration((Date.now() - t0) / 1000)}\n` +
          `  scores: ${r.tables.join(', ')}\n` + (process.env[MERGED_HERE] ? '' : `  when every worker has finished: cpt select ${recipe.file}\n`));
        return;
      }
      if (workers !== undefined && workers > 1 && recipe.method !== 'tacp') {
        if (flags.rescore) throw new UserError('--rescore with --workers: the workers keep the shards already scored; delete the score tables under <prepared_dir>/scores/ first, or rescore in one process');
        await localWorkers(recipe, workers);
      }
      const r = await runSelection(recipe, { force: flags.force, rescore: flags.rescore, onProgress: progress.onProgress });
      progress.finish();
      const sel = r.record.selection;
      const pct = sel.corpus_tokens ? ((100 * sel.selected_tokens) / sel.corpus_tokens).toFixed(1) : '–';
      process.stdout.write(
        `${r.reused ? 'up to date' : 'selected'}: ${recipe.method}${sel.metrics.length ? ` [${sel.metrics.join('+')}, ${sel.sampling}]` : ''} → ` +
          `${sel.selected_docs} docs, ${sel.selected_tokens} tokens (${pct}% of ${sel.corpus_tokens} corpus tokens; budget ${sel.budget_tokens}) in ${fmtDuration((Date.now() - t0) / 1000)}\n` +
          `  ids: ${r.ids} (of ${r.record.corpus_dir})\n` +
          (r.scores ? `  scores: ${r.scores}\n` : '') +
          (r.report ? `  report: ${r.report}\n` : ''),
      );
    });
}
