import type { Command } from 'commander';
import { loadRecipeDetailed } from '../recipe/load.js';
import { exportNeox } from '../export/neox.js';
import { exportHfTrainer } from '../export/hf-trainer.js';
import type { MegatronDtype } from '../data/megatron.js';
import { UserError } from '../util/errors.js';

/** Export targets: GPT-NeoX (Pythia's own trainer, GPUs) and the Hugging Face Trainer (torchrun; GPUs or CPUs). */
const TARGETS = ['neox', 'hf-trainer'] as const;

interface Opts { to: string; out: string; gpus?: string; nodes: string; gpusPerNode: string; cpu?: boolean; emit?: string; dtype?: string; existing?: boolean; force?: boolean }

function count(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag}: expected a whole number ≥ 1, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('export')
    .argument('<recipe>', 'recipe YAML file')
    .description('hand the recipe\'s selection to a distributed trainer: GPT-NeoX (Megatron data, config) or the Hugging Face Trainer (datasets, TrainingArguments, torchrun/Slurm job)')
    .requiredOption('--to <trainer>', `target trainer: ${TARGETS.join(', ')}`)
    .requiredOption('--out <dir>', 'output directory')
    .option('--nodes <n>', 'nodes the run will use', '1')
    .option('--gpus-per-node <n>', 'GPUs per node (with --cpu: CPU processes per node); sets gradient accumulation so the global batch matches the recipe', '8')
    .option('--gpus <n>', 'neox: GPUs in all (default: nodes × gpus-per-node)')
    .option('--cpu', 'hf-trainer: CPU processes over gloo instead of GPUs')
    .option('--emit <launcher>', 'hf-trainer: also write a job file for this launcher (slurm)')
    .option('--dtype <type>', 'neox: token type in the .bin files, uint16 or int32 (default: uint16 below 65,500 tokens, as Megatron picks)')
    .option('--existing', 'use the selection that exists; refuse instead of running prepare and select')
    .option('--force', 'write into a non-empty --out that holds no earlier export (files cpt did not write are never replaced)')
    .action(async (file: string, o: Opts) => {
      if (!(TARGETS as readonly string[]).includes(o.to)) throw new UserError(`--to: unknown target "${o.to}". Should be one of: ${TARGETS.join(', ')}`);
      const nodes = count('--nodes', o.nodes), perNode = count('--gpus-per-node', o.gpusPerNode);
      const log = (l: string) => process.stderr.write(`export: ${l}\n`);
      if (o.to === 'neox') {
        if (o.cpu || o.emit) throw new UserError(`${o.cpu ? '--cpu' : '--emit'}: only for --to hf-trainer (GPT-NeoX runs on GPUs and launches through its deepy.py)`);
        if (o.dtype !== undefined && o.dtype !== 'uint16' && o.dtype !== 'int32') throw new UserError(`--dtype: expected uint16 or int32, got "${o.dtype}"`);
        const gpus = o.gpus !== undefined ? count('--gpus', o.gpus) : nodes * perNode;
        const { recipe, notes } = await loadRecipeDetailed(file);
        for (const n of notes) process.stderr.write(`note: ${n}\n`);
        await exportNeox(recipe, { out: o.out, gpus, dtype: o.dtype as MegatronDtype | undefined, existing: o.existing, force: o.force, log });
        return;
      }
      if (o.gpus !== undefined || o.dtype !== undefined) throw new UserError(`${o.gpus !== undefined ? '--gpus' : '--dtype'}: only for --to neox (hf-trainer takes --nodes and --gpus-per-node)`);
      if (o.emit !== undefined && o.emit !== 'slurm') throw new UserError(`--emit: expected slurm, got "${o.emit}"`);
      const { recipe, notes } = await loadRecipeDetailed(file);
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      await exportHfTrainer(recipe, { out: o.out, nodes, gpusPerNode: perNode, cpu: o.cpu, slurm: o.emit === 'slurm', existing: o.existing, force: o.force, log });
    });
}
