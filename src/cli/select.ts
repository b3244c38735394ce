import type { Command } from 'commander';
import { loadRecipeDetailed } from '../recipe/load.js';
import { runSelection } from '../select/index.js';
import { selectionProgress } from '../select/progress.js';
import { fmtDuration } from '../util/progress.js';

export function register(program: Command): void {
  program
    .command('select')
    .argument('<recipe>', 'recipe YAML (method, data, selection)')
    .description('Score the domain corpus and select the training documents (DACP, TACP, ETS-DACP, ETA-DACP, ETS-DACP-com)')
    .option('--force', 'sample and write the selection again even if it is up to date')
    .option('--rescore', 'recompute the document scores even if scores.arrow matches the corpus and settings')
    .addHelpText(
      'after',
      `
Scores go to <prepared_dir>/scores/<metrics>-<key>/scores.arrow, shared by every run with the
same corpus and scoring settings (hard and soft sampling of one method score once). Writes
<run_dir>/selection/: selected/ (corpus shards + manifest.json, read by \`cpt train\`), report.md
and histograms. An interrupted scoring resumes from the last completed shard.`,
    )
    .action(async (recipeFile: string, flags: { force?: boolean; rescore?: boolean }) => {
      const { recipe, notes } = await loadRecipeDetailed(recipeFile);
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      const t0 = Date.now();
      const progress = selectionProgress();
      const r = await runSelection(recipe, { force: flags.force, rescore: flags.rescore, onProgress: progress.onProgress });
      progress.finish();
      const sel = r.manifest.selection;
      const pct = sel.corpus_tokens ? ((100 * sel.selected_tokens) / sel.corpus_tokens).toFixed(1) : '–';
      process.stdout.write(
        `${r.reused ? 'up to date' : 'selected'}: ${recipe.method}${sel.metrics.length ? ` [${sel.metrics.join('+')}, ${sel.sampling}]` : ''} → ` +
          `${sel.selected_docs} docs, ${sel.selected_tokens} tokens (${pct}% of ${sel.corpus_tokens} corpus tokens; budget ${sel.budget_tokens}) in ${fmtDuration((Date.now() - t0) / 1000)}\n` +
          `  shards: ${r.dir}\n` +
          (r.scores ? `  scores: ${r.scores}\n` : '') +
          (r.report ? `  report: ${r.report}\n` : ''),
      );
    });
}
