import type { Command } from 'commander';
import { loadRecipe } from '../recipe/load.js';
import { runSelection, type SelectionProgress } from '../select/index.js';
import { Progress, fmtDuration, fmtRate } from '../util/progress.js';

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
      const recipe = await loadRecipe(recipeFile);
      const t0 = Date.now();
      let bar: Progress | null = null;
      let scoreStart = 0;
      let doneDocs = 0;
      let lastPhase = '';
      let extra = '';
      const onProgress = (p: SelectionProgress): void => {
        if (p.phase !== lastPhase) {
          if (lastPhase === 'score') bar?.finish(extra);
          if (p.phase !== 'score') process.stderr.write(`select: ${p.phase}${p.message ? `: ${p.message}` : ''}\n`);
          lastPhase = p.phase;
        }
        if (p.phase === 'score' && p.score) {
          const s = p.score;
          if (!bar) {
            if (s.skippedShards) process.stderr.write(`select: resuming scoring (${s.skippedShards} of ${s.shards} shards already scored)\n`);
            bar = new Progress('select: scoring', p.totalDocs, 'docs');
            scoreStart = Date.now();
          }
          const secs = (Date.now() - scoreStart) / 1000;
          extra = `${secs > 0.5 ? fmtRate(s.chars / 1e6 / secs) : '?'} MB/s | shard ${s.shard}/${s.shards}`;
          bar.add(s.docs - doneDocs, extra);
          doneDocs = s.docs;
        }
      };
      const r = await runSelection(recipe, { force: flags.force, rescore: flags.rescore, onProgress });
      if (lastPhase === 'score') (bar as Progress | null)?.finish(extra);
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
