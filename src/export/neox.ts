/**
 * `cpt export RECIPE --to neox`: hand a selection to GPT-NeoX (Pythia's own trainer) for
 * multi-GPU, multi-node training. Writes the selected documents, Fin-test and Pile-test as Megatron
 * indexed datasets, a GPT-NeoX config mirroring the recipe, the tokenizer, and a README with the
 * commands to convert the base checkpoint, train, convert back and evaluate with cpt.
 *
 * Config keys are GPT-NeoX's own (configs/neox_arguments.md); those without a recipe counterpart
 * take the values of configs/pythia/*.yml.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { NeoXConfig } from '../model/config.js';
import { derive, paramCount } from '../model/config.js';
import { modelInfo } from '../recipe/model-info.js';
import type { Recipe } from '../recipe/types.js';
import {
  isHeldOut, loadTokenizer, pileTestDir, prepareCorpus, readTokenized, tokenizeCorpus, type Tokenizer, type TokenizedDoc,
} from '../data/index.js';
import { readSelectionRecord } from '../select/write-selected.js';
import { bestDtype, MegatronWriter, type MegatronDtype } from '../data/megatron.js';
import { runSelection, selectedIds, selectionDir } from '../select/index.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { lockDir } from '../util/lock.js';
import { checkOut, linkModelFiles } from './out-dir.js';
import { SUMS_FILE, writeChecksums } from './checksums.js';

export interface ExportOptions {
  out: string;
  /** GPUs the run will use (sets gradient accumulation so the global batch matches the recipe). */
  gpus: number;
  /** Token dtype of the .bin files; default Megatron's choice for the vocabulary. */
  dtype?: MegatronDtype;
  /** Use only the selection that exists; refuse instead of running prepare and select. */
  existing?: boolean;
  /** Write into a non-empty `out` that holds no earlier export (never replacing a file cpt did not write). */
  force?: boolean;
  log: (line: string) => void;
}

/** Every file an export writes, relative to its directory. */
const OWN_FILES = ['neox.yml', 'tokenizer.json', 'export.json', 'README.md', 'hf-cache', 'SHA256SUMS', ...['train', 'valid', 'test'].flatMap((s) => ['bin', 'idx'].map((e) => `data/${s}_text_document.${e}`))];

/** What `export.json` records, and what `cpt plot` reads to put a GPT-NeoX run on a token axis. */
export interface ExportManifest {
  kind: 'cpt-neox-export';
  version: 1;
  recipe: string;
  method: string;
  sampling: string;
  /** How the selection became a plain document list (GPT-NeoX has no per-document weights). */
  sampling_note: string;
  dtype: MegatronDtype;
  vocab_size: number;
  eod_id: number;
  files: Record<'train' | 'valid' | 'test', { prefix: string; docs: number; tokens: number; seconds: number } | null>;
  budget_tokens: number;
  gpus: number;
  tokens_per_iteration: number;
  train_iters: number;
  notes: string[];
  /** Seconds spent writing from the token cache (tokenization excluded), and the rate. */
  export_seconds: number;
  tokens_per_second: number;
}

/** GPT-NeoX's model parallelism for a shape: Pythia 6.9b and 12b are split over 2 GPUs (configs/pythia). */
export const modelParallel = (c: NeoXConfig): number => (c.hidden_size >= 4096 ? 2 : 1);

function checkGpus(c: NeoXConfig, gpus: number): void {
  if (!Number.isInteger(gpus) || gpus < 1) throw new UserError(`--gpus: expected a whole number ≥ 1, got ${gpus}`);
  const mp = modelParallel(c);
  if (gpus % mp !== 0) throw new UserError(`--gpus ${gpus}: GPT-NeoX splits this model over model_parallel_size ${mp} GPUs; use a multiple of ${mp}`);
}

/**
 * Training plan on `gpus` GPUs: the recipe's batch as micro-batch × accumulation × data-parallel
 * ranks, where GPT-NeoX has gpus / model_parallel_size of them.
 */
export function neoxPlan(r: Recipe, c: NeoXConfig, gpus: number, trainTokens: number): { accum: number; tokensPerIter: number; trainIters: number; notes: string[] } {
  const t = r.train, notes: string[] = [];
  checkGpus(c, gpus);
  const dp = gpus / modelParallel(c);
  const perMicro = t.micro_batch * t.seq_len * dp;
  const accum = Math.max(1, Math.round(t.batch_tokens / perMicro));
  const tokensPerIter = accum * perMicro;
  if (tokensPerIter !== t.batch_tokens) {
    notes.push(`the global batch is ${tokensPerIter} tokens (${t.micro_batch} × ${t.seq_len} × ${accum} accumulation × ${dp} data-parallel ranks of ${gpus} GPUs), not the recipe's ${t.batch_tokens}`);
  }
  let tokens = Math.floor(trainTokens * t.epochs);
  if (t.max_tokens !== undefined && t.max_tokens < tokens) tokens = t.max_tokens;
  let trainIters = Math.max(1, Math.ceil(tokens / tokensPerIter));
  if (t.max_steps !== undefined && t.max_steps < trainIters) trainIters = t.max_steps;
  const passes = (trainIters * tokensPerIter) / Math.max(1, trainTokens);
  if (passes > 1.25 * t.epochs) {
    notes.push(`the selection is ${trainTokens} tokens and ${trainIters} iteration(s) of ${tokensPerIter} tokens pass over it ${passes.toFixed(1)} times (the recipe asks for ${t.epochs}); lower train.batch_tokens or --gpus for a selection this small`);
  }
  return { accum, tokensPerIter, trainIters, notes };
}

/** The GPT-NeoX config (as an object; written as YAML) that mirrors the recipe. */
export function neoxConfig(r: Recipe, c: NeoXConfig, o: { gpus: number; trainTokens: number; finTestTokens: number; validTokens: number; hasTest: boolean; out: string }): Record<string, unknown> {
  const t = r.train;
  const plan = neoxPlan(r, c, o.gpus, o.trainTokens);
  const mp = modelParallel(c);
  const data = (name: string) => [path.join(o.out, 'data', `${name}_text_document`)];
  return {
    // Model shape, from the HF config of the model the recipe continues.
    pipe_parallel_size: 1,
    model_parallel_size: mp,
    num_layers: c.num_hidden_layers,
    hidden_size: c.hidden_size,
    num_attention_heads: c.num_attention_heads,
    ...(c.intermediate_size !== 4 * c.hidden_size ? { intermediate_size: c.intermediate_size } : {}),
    seq_length: t.seq_len,
    max_position_embeddings: c.max_position_embeddings,
    norm: 'layernorm',
    layernorm_epsilon: c.layer_norm_eps,
    pos_emb: 'rotary',
    rotary_pct: c.rotary_pct,
    rotary_emb_base: c.rotary_emb_base,
    no_weight_tying: !c.tie_word_embeddings,
    gpt_j_residual: c.use_parallel_residual,
    activation: 'gelu',
    // NeoX's fused bias-GELU is the tanh approximation; unfused it is exact (torch's F.gelu).
    bias_gelu_fusion: !derive(c).exactGelu,
    output_layer_parallelism: 'column',
    scaled_upper_triang_masked_softmax_fusion: true,
    // Optimizer and schedule, from the recipe.
    optimizer: { type: 'Adam', params: { lr: t.lr, betas: [t.beta1, t.beta2], eps: t.eps } },
    min_lr: t.min_lr,
    weight_decay: t.weight_decay,
    gradient_clipping: t.clip,
    lr_decay_style: t.schedule,
    warmup: t.warmup,
    train_iters: plan.trainIters,
    lr_decay_iters: plan.trainIters,
    seed: t.seed,
    // Batch: the recipe's tokens per step on `gpus` GPUs.
    train_micro_batch_size_per_gpu: t.micro_batch,
    gradient_accumulation_steps: plan.accum,
    zero_optimization: { stage: mp > 1 ? 1 : 0, allgather_partitions: true, allgather_bucket_size: 500000000, overlap_comm: true, reduce_scatter: true, reduce_bucket_size: 500000000, contiguous_gradients: true, cpu_offload: false },
    // Current GPT-NeoX reads bf16 from these two keys (an fp16 block would mean fp16).
    precision: 'bfloat16',
    bf16: { enabled: true },
    fp32_allreduce: true,
    checkpoint_activations: true,
    checkpoint_num_layers: 1,
    partition_activations: true,
    synchronize_each_layer: true,
    hidden_dropout: 0,
    attention_dropout: 0,
    // Data: the selection, Fin-test as validation, Pile-test as test (GPT-NeoX needs a test
    // split: without a Pile-test, Fin-test again).
    data_impl: 'mmap',
    train_data_paths: data('train'),
    valid_data_paths: data('valid'),
    test_data_paths: data(o.hasTest ? 'test' : 'valid'),
    tokenizer_type: 'HFTokenizer',
    vocab_file: path.join(o.out, 'tokenizer.json'),
    // Continue from the converted base checkpoint with a fresh optimizer; save, evaluate, log.
    // The converter writes the checkpoint to checkpoints/base and `latest` (naming it) beside.
    load: path.join(o.out, 'checkpoints'),
    finetune: true,
    save: path.join(o.out, 'checkpoints', 'run'),
    checkpoint_factor: r.checkpoint.every,
    eval_interval: r.monitor.every,
    // The recipe's Fin-test tokens per evaluation, but no more than the validation split holds
    // (GPT2Dataset would otherwise cycle a small Fin-test thousands of times).
    eval_iters: Math.max(1, Math.min(Math.ceil(o.finTestTokens / plan.tokensPerIter), Math.floor(o.validTokens / plan.tokensPerIter))),
    log_interval: 10,
    steps_per_print: 10,
    distributed_backend: 'nccl',
    use_wandb: false,
    tensorboard_dir: path.join(o.out, 'tensorboard'),
  };
}

/**
 * YAML that GPT-NeoX reads as meant: it loads configs with PyYAML, whose YAML 1.1 resolver takes
 * `1e-8` (no dot in the mantissa) for a string, so exponent floats are written `1.0e-8`.
 */
export function neoxYaml(cfg: Record<string, unknown>): string {
  return YAML.stringify(cfg).replace(/^(\s*(?:[\w.]+:|-)\s+)(-?\d+)([eE][-+]?\d+)$/gm, '$1$2.0$3');
}

/** Runs what is missing (prepare, select), then writes DIR as described in the module comment. */
export async function exportNeox(r: Recipe, o: ExportOptions): Promise<ExportManifest> {
  const info = modelInfo(r.model.init, (p) => path.resolve(p));
  if (!info.config) throw new UserError(`${r.file}: model.init ${r.model.init}: ${info.problem ?? 'no config.json and not a Pythia preset'}; the GPT-NeoX config needs the model's shape`);
  const out = path.resolve(o.out);
  checkGpus(info.config, o.gpus); // before anything is written
  checkOut(out, o.force ?? false, 'cpt-neox-export', OWN_FILES);
  mkdirSync(out, { recursive: true });
  const release = lockDir(out, 'cpt export');
  const tok = await loadTokenizer(r.data.tokenizer);
  try {
    const dtype = o.dtype ?? bestDtype(tok.vocabSize);
    if (dtype === 'uint16' && tok.vocabSize >= 65500) {
      throw new UserError(`--dtype uint16: the tokenizer has ${tok.vocabSize} tokens; Megatron stores vocabularies of 65,500 or more as int32 (drop --dtype or pass int32)`);
    }
    const selDir = selectionDir(r);
    if (o.existing) {
      if (!(await readSelectionRecord(selDir))) throw new UserError(`no selection yet in ${selDir}; run cpt select ${r.file} first (or drop --existing)`);
    } else {
      await prepareCorpus(r.data.corpus, r.data.prepared_dir, { shardMb: r.data.shard_mb });
      const s = await runSelection(r);
      o.log(`${s.reused ? 'selection' : 'selected'}: ${s.record.selection.selected_docs} docs, ${s.record.selection.selected_tokens} tokens (${s.ids})`);
    }
    const sel = (await readSelectionRecord(selDir))!;
    mkdirSync(path.join(out, 'data'), { recursive: true });
    const ids = await selectedIds({ ids: path.join(selDir, sel.ids_file) });
    const fin = r.data.fin_test_fraction;
    // The selection never holds Fin-test documents (they are not scored, so never selected).
    const train = await writeSplit(path.join(out, 'data', 'train_text_document'), sel.corpus_dir, tok, dtype, (d) => ids.has(d.id));
    o.log(`train: ${train.docs} documents, ${train.tokens} tokens (${rate(train)})`);
    const valid = await writeSplit(path.join(out, 'data', 'valid_text_document'), r.data.prepared_dir, tok, dtype, (d) => isHeldOut(d.id, fin));
    o.log(`valid (Fin-test): ${valid.docs} documents, ${valid.tokens} tokens (the held-out part of the whole corpus, found in ${valid.seconds.toFixed(2)} s)`);
    let test: typeof train | null = null;
    if (r.data.pile_test.length) {
      const pileDir = pileTestDir(r.data.prepared_dir);
      await prepareCorpus(r.data.pile_test, pileDir, { shardMb: r.data.shard_mb });
      test = await writeSplit(path.join(out, 'data', 'test_text_document'), pileDir, tok, dtype, null);
      o.log(`test (Pile-test): ${test.docs} documents, ${test.tokens} tokens (${rate(test)})`);
    }
    const seconds = train.seconds + valid.seconds + (test?.seconds ?? 0);
    const written = train.tokens + valid.tokens + (test?.tokens ?? 0);
    copyFileSync(r.data.tokenizer, path.join(out, 'tokenizer.json'));

    const plan = neoxPlan(r, info.config, o.gpus, train.tokens);
    const cfg = neoxConfig(r, info.config, { gpus: o.gpus, trainTokens: train.tokens, finTestTokens: r.monitor.fin_test_tokens, validTokens: valid.tokens, hasTest: !!test, out });
    const header = `# GPT-NeoX config written by cpt export from ${r.file} (${new Date().toISOString()}).\n` +
      `# Keys as in GPT-NeoX configs/neox_arguments.md; those with no recipe counterpart take configs/pythia values.\n`;
    // A preset model.init is a fresh initialisation: GPT-NeoX starts from its own, nothing to load.
    const base = info.kind === 'dir' ? writeHfCache(out, r, info.init) : null;
    if (!base) delete cfg.load, delete cfg.finetune;
    await writeFileAtomic(path.join(out, 'neox.yml'), header + neoxYaml(cfg));
    const sampling = sel.selection.sampling;
    const manifest: ExportManifest = {
      kind: 'cpt-neox-export',
      version: 1,
      recipe: r.file,
      method: r.method,
      sampling,
      sampling_note: sampling === 'soft'
        ? 'soft sampling is materialised: documents were drawn with probability by their weights until the token budget (selection/report.md), and the trainer sees that document list; GPT-NeoX has no per-document weights'
        : 'the selected documents as a plain list, in selection order',
      dtype,
      vocab_size: tok.vocabSize,
      eod_id: tok.eosId,
      files: {
        train: { prefix: 'data/train_text_document', ...train },
        valid: { prefix: 'data/valid_text_document', ...valid },
        test: test ? { prefix: 'data/test_text_document', ...test } : null,
      },
      budget_tokens: sel.selection.budget_tokens,
      gpus: o.gpus,
      tokens_per_iteration: plan.tokensPerIter,
      train_iters: plan.trainIters,
      notes: plan.notes,
      export_seconds: seconds,
      tokens_per_second: written / Math.max(seconds, 1e-9),
    };
    const dataFiles = (['train', 'valid', 'test'] as const).flatMap((s) => manifest.files[s] ? ['bin', 'idx'].map((e) => `${manifest.files[s]!.prefix}.${e}`) : []);
    const hashed = await writeChecksums(out, [...dataFiles, 'tokenizer.json', 'neox.yml']);
    o.log(`checksums: ${SUMS_FILE} (${hashed.toFixed(2)} s; check a copy with sha256sum -c ${SUMS_FILE})`);
    await writeFileAtomic(path.join(out, 'export.json'), JSON.stringify(manifest, null, 2) + '\n');
    await writeFileAtomic(path.join(out, 'README.md'), readme(r, info.config, manifest, out, base));
    for (const n of plan.notes) o.log(`note: ${n}`);
    o.log(`wrote ${written} tokens from the token cache in ${seconds.toFixed(2)} s to ${out} (the selection at ${rate(train)})`);
    return manifest;
  } finally {
    await tok.close();
    release();
  }
}

/**
 * GPT-NeoX's HF→NeoX converter loads only `EleutherAI/<name>` at revision `step<rev>` from its
 * `--cache-dir` (or the Hub). The recipe's own `model.init` is laid out there as a Hugging Face
 * hub cache entry (refs/step0 naming a snapshot that holds its files, hard-linked or copied), so
 * with HF_HUB_OFFLINE=1 the converter reads exactly that model. Returns the name to pass.
 */
export function writeHfCache(out: string, r: Recipe, modelDir: string): { name: string; revision: number; cacheDir: string } {
  const name = `cpt-${r.name}-base`, revision = 0;
  const cacheDir = path.join(out, 'hf-cache');
  const repo = path.join(cacheDir, name, `step${revision}`, `models--EleutherAI--${name}`);
  rmSync(path.join(cacheDir, name), { recursive: true, force: true });
  const files = readdirSync(modelDir).filter((f) => f === 'config.json' || f.endsWith('.safetensors') || f === 'model.safetensors.index.json');
  const commit = createHash('sha1').update(files.map((f) => `${f}:${statSync(path.join(modelDir, f)).size}`).join('\n')).digest('hex');
  const snap = path.join(repo, 'snapshots', commit);
  linkModelFiles(modelDir, snap, files);
  mkdirSync(path.join(repo, 'refs'), { recursive: true });
  writeFileSync(path.join(repo, 'refs', `step${revision}`), commit);
  return { name, revision, cacheDir };
}

const rate = (s: { tokens: number; seconds: number }) => `${(s.tokens / Math.max(s.seconds, 1e-9) / 1e6).toFixed(1)} M tokens/s`;

/** Tokenize (cached) the prepared corpus in `dir` and write its documents (those `keep` accepts), each with EOD. */
async function writeSplit(prefix: string, dir: string, tok: Tokenizer, dtype: MegatronDtype, keep: ((d: TokenizedDoc) => boolean) | null): Promise<{ docs: number; tokens: number; seconds: number }> {
  await tokenizeCorpus(dir, tok); // cached after the first time
  const t0 = performance.now();
  const w = new MegatronWriter(prefix, dtype, tok.vocabSize);
  try {
    for await (const batch of readTokenized(dir, tok, { views: true, docIds: keep !== null })) for (const d of batch) if (!keep || keep(d)) w.add(d.ids, tok.eosId);
    return { ...w.finish(), seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    w.abort();
    throw e;
  }
}

function readme(r: Recipe, c: NeoXConfig, m: ExportManifest, out: string, base: { name: string; revision: number; cacheDir: string } | null): string {
  const params = paramCount(c);
  const mp = modelParallel(c);
  const convert = (pre: string) => `${pre}python tools/ckpts/convert_hf_to_sequential.py \\
         --hf-model-name ${base!.name} --revision ${base!.revision} --cache-dir ${base!.cacheDir} \\
         --output-dir ${path.join(out, 'checkpoints', 'base')} --config ${path.join(out, 'neox.yml')}`;
  const step1 = !base
    ? `1. Nothing to convert: \`model.init\` (${r.model.init}) is a fresh initialisation, which GPT-NeoX
   makes itself (neox.yml has no \`load\`).`
    : `1. Convert the model the recipe continues (\`model.init\`, ${r.model.init}) to GPT-NeoX's layout.
   GPT-NeoX's converter loads only \`EleutherAI/NAME\` at a \`stepN\` revision from its cache
   directory, so the export lays \`model.init\` out there as a Hugging Face cache entry
   (\`${base.cacheDir}\`); HF_HUB_OFFLINE=1 keeps it from looking at the Hub. At GPT-NeoX ea7aefd8 the
   converter calls \`neox_args.comet()\`, which no longer exists; rename it first:

       sed -i 's/neox_args.comet()/neox_args.initialize_comet()/' tools/ckpts/convert_hf_to_sequential.py
${mp === 1 ? `
   then convert in one process (one GPU; Megatron's initialisation needs CUDA):

       ${convert('HF_HUB_OFFLINE=1 OMPI_COMM_WORLD_RANK=0 CUDA_VISIBLE_DEVICES=0 ')}
` : `
   This model is split over model_parallel_size ${mp} GPUs, which a one-process conversion cannot
   write, and the converter's multi-GPU path cannot run: it calls \`consume_neox_args2(args2)\` on
   an \`args2\` it never defines (NameError), at ea7aefd8 and at every earlier version of the
   script. For Pythia's own weights, take the model-parallel GPT-NeoX checkpoints EleutherAI
   released with Pythia (the \`neox-ckpt-pythia-*\` repositories on the Hub, model_parallel_size
   ${mp} as trained), put their step directory in ${path.join(out, 'checkpoints')} and name it in
   \`${path.join(out, 'checkpoints', 'latest')}\`. (Unverified here: no GPU was available to the cpt project.)
`}`;
  return `# GPT-NeoX run exported by cpt

Recipe: \`${r.file}\` (${r.method}, ${m.sampling} sampling). Model: ${r.model.init} (${(params / 1e9).toFixed(2)}B parameters).
Data: ${m.files.train!.docs} training documents (${m.files.train!.tokens} tokens, EOD ${m.eod_id} after each, ${m.dtype}),
Fin-test ${m.files.valid!.docs} documents as validation${m.files.test ? `, Pile-test ${m.files.test.docs} documents as test` : ''}.
${m.sampling_note}.
Plan: ${m.train_iters} iterations of ${m.tokens_per_iteration} tokens on ${m.gpus} GPUs.${m.notes.length ? `\nNotes: ${m.notes.join('; ')}.` : ''}

All commands run from a GPT-NeoX checkout (EleutherAI/gpt-neox, checked at ea7aefd8) with its
requirements installed.

${step1}

2. Train, on one node or many (a hostfile for several nodes, as GPT-NeoX's README describes);
   keep the log, which \`cpt plot\` reads:

       python ./deepy.py train.py ${path.join(out, 'neox.yml')} 2>&1 | tee ${path.join(out, 'train.log')}

3. Convert the result back to Hugging Face format:

       python tools/ckpts/convert_neox_to_hf.py --input_dir ${path.join(out, 'checkpoints', 'run', `global_step${m.train_iters}`)} \\
         --config_file ${path.join(out, 'neox.yml')} --output_dir ${path.join(out, 'hf')}

4. Evaluate and plot with cpt:

       npx cpt eval --model ${path.join(out, 'hf')}
       npx cpt score --model ${path.join(out, 'hf')} --text FILE.jsonl
       npx cpt plot ${out}       # Fin-test (validation) and Pile-test (test) losses from train.log

Check the data with \`npx cpt inspect ${path.join(out, 'data', 'train_text_document')}\`.
`;
}
