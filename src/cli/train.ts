import type { Command } from 'commander';
import { UserError } from '../util/errors.js';
import { ENGINE_LIST, parseEngineKind } from '../engine/index.js';
import { loadRecipeDetailed } from '../recipe/load.js';
import { runTraining } from '../train/run.js';

export function register(program: Command): void {
  program
    .command('train')
    .description('continual pre-training: prepare → select → pack → train with AdamW, checkpointing and monitoring')
    .argument('<recipe>', 'recipe YAML')
    .option('--resume [auto|PATH]', 'continue from the newest good checkpoint (auto) or from PATH (a step-<n> directory)')
    .option('--max-steps <n>', 'stop after optimizer step N with a checkpoint (the lr schedule still spans the whole run)')
    .option('--engine <kind>', `${ENGINE_LIST} (default: the recipe's engine.kind)`)
    .option('--threads <n>', 'engine threads (default: the recipe\'s engine.threads)')
    .option('--precision <p>', "matmul precision, fp32 or bf16 (default: the recipe's engine.precision)")
    .action(async (file: string, o: { resume?: string | boolean; maxSteps?: string; engine?: string; threads?: string; precision?: string }) => {
      const resume = o.resume === true ? 'auto' : o.resume === undefined || o.resume === false ? undefined : o.resume;
      const { recipe, notes } = await loadRecipeDetailed(file);
      if (o.precision !== undefined) {
        if (o.precision !== 'fp32' && o.precision !== 'bf16') throw new UserError(`--precision: expected fp32 or bf16, got "${o.precision}"`);
        recipe.engine.precision = o.precision;
      }
      // Settings the recipe asked for but cannot get as written (e.g. a batch below one micro-batch).
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      const r = await runTraining(recipe, {
        resume,
        maxSteps: o.maxSteps === undefined ? undefined : positiveInt('--max-steps', o.maxSteps),
        engine: o.engine === undefined ? undefined : parseEngineKind(o.engine),
        threads: o.threads === undefined ? undefined : positiveInt('--threads', o.threads, true),
      });
      // Interrupted runs exit as the shell expects of that signal, after their checkpoint.
      if (r.stoppedBy === 'SIGINT') process.exit(130);
      if (r.stoppedBy === 'SIGTERM') process.exit(143);
    });
}

function positiveInt(flag: string, v: string, zeroOk = false): number | undefined {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1)) throw new UserError(`${flag}: "${v}" should be a whole number${zeroOk ? '' : ' ≥ 1'}`);
  return zeroOk && n === 0 ? undefined : n;
}
