import type { Command } from 'commander';
import { loadRecipeDetailed } from '../recipe/load.js';
import { EXPORT_TARGETS, exportNeox } from '../export/neox.js';
import type { MegatronDtype } from '../data/megatron.js';
import { UserError } from '../util/errors.js';

export function register(program: Command): void {
  program
    .command('export')
    .argument('<recipe>', 'recipe YAML file')
    .description('hand the recipe\'s selection to another trainer: GPT-NeoX data (Megatron indexed datasets), config and commands')
    .requiredOption('--to <trainer>', `target trainer: ${EXPORT_TARGETS.join(', ')}`)
    .requiredOption('--out <dir>', 'output directory')
    .option('--gpus <n>', 'GPUs the run will use (sets gradient accumulation so the global batch matches the recipe)', '8')
    .option('--dtype <type>', 'token type in the .bin files: uint16 or int32 (default: uint16 below 65,500 tokens, as Megatron picks)')
    .option('--existing', 'use the selection that exists; refuse instead of running prepare and select')
    .option('--force', 'write into a non-empty --out that holds no earlier export (files cpt did not write are never replaced)')
    .action(async (file: string, o: { to: string; out: string; gpus: string; dtype?: string; existing?: boolean; force?: boolean }) => {
      if (!(EXPORT_TARGETS as readonly string[]).includes(o.to)) throw new UserError(`--to: unknown target "${o.to}". Should be one of: ${EXPORT_TARGETS.join(', ')}`);
      if (o.dtype !== undefined && o.dtype !== 'uint16' && o.dtype !== 'int32') throw new UserError(`--dtype: expected uint16 or int32, got "${o.dtype}"`);
      const gpus = Number(o.gpus);
      if (!Number.isInteger(gpus) || gpus < 1) throw new UserError(`--gpus: expected a whole number ≥ 1, got "${o.gpus}"`);
      const { recipe, notes } = await loadRecipeDetailed(file);
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      // One target so far: GPT-NeoX.
      await exportNeox(recipe, { out: o.out, gpus, dtype: o.dtype as MegatronDtype | undefined, existing: o.existing, force: o.force, log: (l) => process.stderr.write(`export: ${l}\n`) });
    });
}
