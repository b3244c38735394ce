/**
 * `cpt export RECIPE --to hf-trainer`: hand a selection to the Hugging Face Trainer under torchrun,
 * on one machine or many (Slurm), on GPUs or CPU processes. Writes into DIR:
 *   base/          the recipe's base model (HF files, linked or copied) and its tokenizer
 *   data/train     the packed rows `cpt train` trains on (same ids from the token cache, same order),
 *   data/fin-test, data/pile-test  the rows cpt's monitor scores; all three `datasets` directories
 *   args.json      TrainingArguments mirroring the recipe; train.py (src/export/hf_train.py)
 *   train.sbatch   with `--emit slurm`: torchrun on every node of the allocation
 *   export.json, README.md
 * The result, DIR/run/final, is an HF directory: `cpt score`, `cpt eval` read it as they are;
 * `cpt plot DIR` draws its losses (src/monitor/hf-trainer-log.ts).
 *
 * Why not LitGPT (the issue's first choice): `litgpt pretrain` hard-codes FSDP for more than one
 * process, and Lightning Fabric refuses FSDP without a GPU ("FSDP is only available on GPU"), so
 * LitGPT cannot run as several CPU processes; the Trainer runs DDP over gloo there and DDP, FSDP or
 * DeepSpeed (through Accelerate) on GPUs.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { modelInfo } from '../recipe/model-info.js';
import type { Recipe } from '../recipe/types.js';
import { writeHfRows } from '../data/hf-dataset.js';
import type { PackedDataset } from '../data/pack.js';
import { readSelectionRecord } from '../select/write-selected.js';
import { selectionDir } from '../select/index.js';
import { prepareTrainInputs } from '../train/inputs.js';
import { planTraining } from '../train/plan.js';
import { warmupSteps } from '../train/schedule.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { lockDir } from '../util/lock.js';
import { ROOT } from '../util/paths.js';
import { checkOut, linkModelFiles } from './out-dir.js';
import { SUMS_FILE, writeChecksums } from './checksums.js';

export const HF_EXPORT_KIND = 'cpt-hf-trainer-export';
const SPLITS = ['train', 'fin-test', 'pile-test'] as const;
/** Everything but base/ and data/ (whose contents are replaced as a whole). */
const OWN_FILES = ['args.json', 'train.py', 'train.sbatch', 'export.json', 'README.md', 'SHA256SUMS', 'base', 'data'];

export interface HfExportOptions {
  out: string;
  nodes: number;
  /** Processes per node: one per GPU, or CPU workers with `cpu`. */
  gpusPerNode: number;
  /** Run on CPUs (gloo); no GPUs are requested. */
  cpu?: boolean;
  /** Also write train.sbatch. */
  slurm?: boolean;
  existing?: boolean;
  force?: boolean;
  log: (line: string) => void;
}

export interface HfPlan {
  world: number;
  accum: number;
  rowsPerStep: number;
  maxSteps: number;
  warmupSteps: number;
  notes: string[];
}

/** The recipe's optimizer steps on `world` processes: micro-batch × accumulation × world rows per step. */
export function hfPlan(r: Recipe, rows: number, world: number): HfPlan {
  const t = r.train, notes: string[] = [];
  const cpt = planTraining(t, rows);
  const accum = Math.max(1, Math.round(cpt.rowsPerStep / (t.micro_batch * world)));
  const rowsPerStep = accum * t.micro_batch * world;
  let maxSteps = cpt.totalSteps;
  if (rowsPerStep !== cpt.rowsPerStep) {
    maxSteps = Math.max(1, Math.floor((cpt.totalSteps * cpt.rowsPerStep) / rowsPerStep));
    notes.push(`the global batch is ${rowsPerStep} rows (${t.micro_batch} × ${accum} accumulation × ${world} processes), not the recipe's ${cpt.rowsPerStep}; ${maxSteps} steps keep its tokens`);
  }
  if (maxSteps * rowsPerStep > rows) {
    notes.push(`the run passes over the ${rows} rows more than once; the Trainer reads them in the same order every epoch, where cpt reads a fresh permutation from its second epoch`);
  }
  return { world, accum, rowsPerStep, maxSteps, warmupSteps: warmupSteps(t.warmup, maxSteps), notes };
}

/** TrainingArguments (as args.json) mirroring the recipe; keys are the Trainer's own. */
export function hfArgs(r: Recipe, plan: HfPlan, o: { out: string; cpu: boolean; evals: boolean }): Record<string, unknown> {
  const t = r.train;
  return {
    output_dir: path.join(o.out, 'run'),
    per_device_train_batch_size: t.micro_batch,
    per_device_eval_batch_size: t.micro_batch,
    gradient_accumulation_steps: plan.accum,
    max_steps: plan.maxSteps,
    learning_rate: t.lr,
    // Warmup (step + 1) / warmup as cpt; cosine to min_lr at the last step (cpt's starts one step later).
    lr_scheduler_type: t.schedule === 'cosine' ? 'cosine_warmup_with_min_lr' : 'constant_with_warmup',
    ...(t.schedule === 'cosine' ? { lr_scheduler_kwargs: { min_lr: t.min_lr } } : {}),
    warmup_steps: plan.warmupSteps,
    // The Trainer exempts biases and layer norms from decay, as cpt does.
    weight_decay: t.weight_decay,
    adam_beta1: t.beta1,
    adam_beta2: t.beta2,
    adam_epsilon: t.eps,
    max_grad_norm: t.clip,
    optim: o.cpu ? 'adamw_torch' : 'adamw_torch_fused',
    bf16: r.engine.precision === 'bf16',
    // The rows are already in cpt's seeded order; each step reads the same rows as cpt's step.
    train_sampling_strategy: 'sequential',
    dataloader_drop_last: true,
    remove_unused_columns: false,
    eval_strategy: o.evals ? 'steps' : 'no',
    eval_steps: r.monitor.every,
    eval_on_start: o.evals,
    logging_steps: 1,
    save_strategy: 'steps',
    save_steps: r.checkpoint.every,
    save_total_limit: r.checkpoint.keep,
    seed: t.seed,
    report_to: 'none',
    use_cpu: o.cpu,
    ddp_backend: o.cpu ? 'gloo' : 'nccl',
  };
}

/** torchrun on every node of the allocation; a resubmission continues from the last checkpoint. */
export function hfSbatch(r: Recipe, o: { out: string; nodes: number; gpusPerNode: number; cpu: boolean }): string {
  const q = (s: string) => `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
  const g = o.gpusPerNode;
  return `#!/bin/bash
# Continued pre-training of ${r.file} with the Hugging Face Trainer: ${o.nodes} node(s) × ${g} ${o.cpu ? 'CPU process(es)' : 'GPU(s)'}.
# Written by cpt export. Submit again to continue from the last checkpoint (${path.join(o.out, 'run')}/checkpoint-*).
# CPT_PYTHON: a Python with torch, transformers and datasets (default python3).
#SBATCH --job-name=cpt-hf-${r.name}
#SBATCH --nodes=${o.nodes}
#SBATCH --ntasks-per-node=1
${o.cpu ? '' : `#SBATCH --gpus-per-node=${g}\n`}#SBATCH --exclusive
#SBATCH --output=${q(path.join(o.out, 'logs', 'train-%j.out'))}
set -euo pipefail
PYTHON=\${CPT_PYTHON:-python3}
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
${o.cpu ? `# CPU workers share the node's cores (torchrun would give each one thread).\nexport OMP_NUM_THREADS=$(( $(nproc) / ${g} > 0 ? $(nproc) / ${g} : 1 ))\n` : ''}srun --kill-on-bad-exit=1 "$PYTHON" -m torch.distributed.run --nnodes="$SLURM_NNODES" --nproc-per-node=${g} \\
  --rdzv-backend=c10d --rdzv-endpoint="$head:$(( 29500 + SLURM_JOB_ID % 1000 ))" --rdzv-id="$SLURM_JOB_ID" \\
  ${q(path.join(o.out, 'train.py'))}
`;
}

/** What export.json records. */
export interface HfExportManifest {
  kind: typeof HF_EXPORT_KIND;
  version: 1;
  recipe: string;
  method: string;
  seq_len: number;
  rows: Record<(typeof SPLITS)[number], number>;
  nodes: number;
  gpus_per_node: number;
  cpu: boolean;
  gradient_accumulation_steps: number;
  rows_per_step: number;
  max_steps: number;
  notes: string[];
  export_seconds: number;
}

export async function exportHfTrainer(r: Recipe, o: HfExportOptions): Promise<HfExportManifest> {
  for (const [k, v] of [['--nodes', o.nodes], ['--gpus-per-node', o.gpusPerNode]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${k}: expected a whole number ≥ 1, got ${v}`);
  }
  const info = modelInfo(r.model.init, (p) => path.resolve(p));
  if (info.kind !== 'dir') throw new UserError(`${r.file}: model.init ${r.model.init} is a fresh initialisation; the Trainer continues a checkpoint: set model.init to a Hugging Face model directory (a base run's final/)`);
  if (info.problem || !info.exists) throw new UserError(`${r.file}: model.init ${info.init}: ${info.problem ?? 'not found'}`);
  const weights = readdirSync(info.init).filter((f) => f.endsWith('.safetensors') || f === 'model.safetensors.index.json');
  if (!weights.length) throw new UserError(`${r.file}: model.init ${info.init} has no .safetensors weights`);
  const out = path.resolve(o.out);
  checkOut(out, o.force ?? false, HF_EXPORT_KIND, OWN_FILES);
  if (o.existing && !(await readSelectionRecord(selectionDir(r)))) throw new UserError(`no selection yet in ${selectionDir(r)}; run cpt select ${r.file} first (or drop --existing)`);
  mkdirSync(out, { recursive: true });
  const release = lockDir(out, 'cpt export');
  try {
    const inputs = await prepareTrainInputs(r, { log: o.log });
    const t0 = performance.now();
    const rows = { train: inputs.train.count, 'fin-test': inputs.finTestRows, 'pile-test': inputs.pileTestRows };
    const dataSums: Record<string, string> = {}; // data/<split>/<file> → sha256, from the writer
    try {
      rmSync(path.join(out, 'data'), { recursive: true, force: true });
      const split = async (s: (typeof SPLITS)[number], rowsOf: PackedDataset, n: number) => {
        for (const [f, sum] of Object.entries(await writeHfRows(path.join(out, 'data', s), rowsOf, n))) dataSums[`data/${s}/${f}`] = sum;
      };
      await split('train', inputs.train, rows.train);
      if (inputs.finTest) await split('fin-test', inputs.finTest, rows['fin-test']);
      if (inputs.pileTest) await split('pile-test', inputs.pileTest, rows['pile-test']);
    } finally {
      inputs.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    o.log(`data: ${rows.train} training rows, ${rows['fin-test']} Fin-test and ${rows['pile-test']} Pile-test rows of ${r.train.seq_len} tokens in ${seconds.toFixed(2)} s`);

    // The base model beside the data.
    const base = path.join(out, 'base');
    rmSync(base, { recursive: true, force: true });
    linkModelFiles(info.init, base, ['config.json', 'generation_config.json', ...weights]);
    copyFileSync(r.data.tokenizer, path.join(base, 'tokenizer.json'));

    const cpu = o.cpu ?? false;
    const plan = hfPlan(r, rows.train, o.nodes * o.gpusPerNode);
    const args = hfArgs(r, plan, { out, cpu, evals: rows['fin-test'] + rows['pile-test'] > 0 });
    await writeFileAtomic(path.join(out, 'args.json'), JSON.stringify(args, null, 2) + '\n');
    copyFileSync(path.join(ROOT, 'src', 'export', 'hf_train.py'), path.join(out, 'train.py'));
    if (o.slurm) {
      mkdirSync(path.join(out, 'logs'), { recursive: true });
      await writeFileAtomic(path.join(out, 'train.sbatch'), hfSbatch(r, { out, nodes: o.nodes, gpusPerNode: o.gpusPerNode, cpu }));
    } else {
      rmSync(path.join(out, 'train.sbatch'), { force: true });
    }
    const hashed = await writeChecksums(out, [...Object.keys(dataSums), 'args.json', 'train.py', ...readdirSync(base).map((f) => `base/${f}`)], dataSums);
    o.log(`checksums: ${SUMS_FILE} (${hashed.toFixed(2)} s; check a copy with sha256sum -c ${SUMS_FILE})`);
    const manifest: HfExportManifest = {
      kind: HF_EXPORT_KIND, version: 1, recipe: r.file, method: r.method, seq_len: r.train.seq_len, rows,
      nodes: o.nodes, gpus_per_node: o.gpusPerNode, cpu,
      gradient_accumulation_steps: plan.accum, rows_per_step: plan.rowsPerStep, max_steps: plan.maxSteps, notes: plan.notes,
      export_seconds: seconds,
    };
    await writeFileAtomic(path.join(out, 'export.json'), JSON.stringify(manifest, null, 2) + '\n');
    await writeFileAtomic(path.join(out, 'README.md'), readme(r, manifest, out, !!o.slurm));
    for (const n of plan.notes) o.log(`note: ${n}`);
    o.log(`wrote ${out}: ${plan.maxSteps} steps of ${plan.rowsPerStep} rows on ${o.nodes} × ${o.gpusPerNode} ${cpu ? 'CPU process(es)' : 'GPU(s)'}`);
    return manifest;
  } finally {
    release();
  }
}

function readme(r: Recipe, m: HfExportManifest, out: string, slurm: boolean): string {
  const g = m.gpus_per_node;
  return `# Hugging Face Trainer run exported by cpt

Recipe: \`${r.file}\` (${r.method}). Base model: \`${r.model.init}\` (copied or linked into base/).
Data: ${m.rows.train} training rows of ${m.seq_len} tokens (the rows \`cpt train\` reads, in its order),
${m.rows['fin-test']} Fin-test and ${m.rows['pile-test']} Pile-test rows (evaluated every ${r.monitor.every} steps as
eval_fin-test_loss and eval_pile-test_loss). Plan: ${m.max_steps} steps of ${m.rows_per_step} rows
(${r.train.micro_batch} per process × ${m.gradient_accumulation_steps} accumulation × ${m.nodes * g} processes).${m.notes.length ? `\nNotes: ${m.notes.join('; ')}.` : ''}

Needs a Python with torch, transformers and datasets (\`pip install torch transformers datasets accelerate\`).

Train on one machine (${g} ${m.cpu ? 'CPU processes' : 'GPUs'}); run it again to continue from the last checkpoint:

    torchrun --nproc-per-node ${g} ${path.join(out, 'train.py')}
${slurm ? `
Or on Slurm (${m.nodes} node(s)); submit it again to continue from the last checkpoint:

    CPT_PYTHON=/path/to/python sbatch ${path.join(out, 'train.sbatch')}
` : ''}
Back in cpt, the result is an HF directory:

    npx cpt score --model ${path.join(out, 'run', 'final')} --text FILE.jsonl
    npx cpt eval --model ${path.join(out, 'run', 'final')}

    npx cpt plot ${out} ${r.run_dir}    # its Fin-test / Pile-test losses beside cpt's own run (from trainer_state.json)
`;
}
