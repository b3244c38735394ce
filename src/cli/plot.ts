import type { Command } from 'commander';
import { UserError } from '../util/errors.js';
import { plotRuns } from '../monitor/plot.js';

export function register(program: Command): void {
  program
    .command('plot')
    .description('plot Fin-test and Pile-test loss trajectories of one or more runs (SVG + PNG)')
    .argument('<run_dir...>', 'run directories (each with a metrics.jsonl)')
    .option('--out <dir>', 'output directory (default <first run>/plots)')
    .option('--x <axis>', 'x axis: tokens or step', 'tokens')
    .option('--train', 'add a panel with the training loss', false)
    .option('--log-x', 'symmetric-log x axis (runs of very different lengths side by side)', false)
    .action(async (dirs: string[], o: { out?: string; x: string; train: boolean; logX: boolean }) => {
      if (o.x !== 'tokens' && o.x !== 'step') throw new UserError(`--x: "${o.x}" should be tokens or step`);
      const r = await plotRuns(dirs, { out: o.out, x: o.x, train: o.train, logX: o.logX });
      process.stdout.write(`wrote ${r.svg}\nwrote ${r.png}\n`);
    });
}
