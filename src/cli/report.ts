import type { Command } from 'commander';
import path from 'node:path';
import { collect } from '../report/collect.js';
import { reportHtml } from '../report/html.js';
import { writeFileAtomic } from '../util/atomic.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML page of runs and studies: loss curves overlaid, evaluation with standard errors, settings side by side, selection reports, study tables')
    .argument('<dir...>', 'run directories (metrics.jsonl), runs of cpt export, or study directories (results.md)')
    .option('--out <file>', 'the page to write', 'report.html')
    .action(async (dirs: string[], o: { out: string }) => {
      const items = [];
      for (const d of dirs) items.push(await collect(d));
      const out = path.resolve(o.out);
      await writeFileAtomic(out, await reportHtml(items));
      process.stdout.write(`wrote ${out} (open it in a browser; it loads nothing from the network)\n`);
    });
}
