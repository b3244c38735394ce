import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { openMegatron } from '../data/megatron.js';
import { damagedFiles, SUMS_FILE } from '../export/checksums.js';
import { loadTokenizer } from '../data/index.js';
import { cudaPeakBytes } from '../engine/native/index.js';
import type { NeoXConfig } from '../model/config.js';
import { estimate, fmtBytes, fmtCount, fmtDuration, type Estimates } from '../recipe/estimate.js';
import type { Recipe } from '../recipe/types.js';
import { checkInputs } from '../recipe/inputs.js';
import { displayPath, loadRecipeDetailed } from '../recipe/load.js';
import { recipeHash } from '../recipe/resume.js';
import { toYaml } from '../recipe/yaml.js';
import { withGeneratedComments } from '../recipe/comments.js';
import { dataDir } from '../util/paths.js';
import { UserError } from '../util/errors.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .argument('<recipe>', 'recipe YAML file (e.g. recipes/dacp-tiny.yaml), or a Megatron indexed dataset PREFIX (PREFIX.idx + .bin, e.g. from cpt export)')
    .description('validate a recipe and print it with every default filled in, plus token budget, parameters, memory and time estimates; or summarise an exported dataset')
    .option('--tokenizer <file>', 'tokenizer.json to decode a dataset\'s first document (default: the one beside the export)')
    .option('--json', 'print one JSON object (recipe, notes, missing inputs, estimates) instead of text')
    .option('--no-resolved', 'leave out the resolved YAML')
    .option('--explain', "comment every key of the resolved YAML with its meaning, type and default (as the shipped recipes are)")
    .addHelpText(
      'after',
      `
Token counts come from the prepared corpus when \`cpt prepare\` has run (exact from its token cache,
else its text bytes / 4), otherwise from the raw input bytes / 4 (an estimate; markup inflates it).
Memory: fp32 weights + grads + two Adam moments (16 bytes/parameter) + activations for
micro_batch × seq_len tokens. Time: (6·N + 12·layers·hidden·seq) FLOPs per token (N without the
input embedding) at the engine's throughput: measured if checkpoints/bench/engine.json exists
(the fp32 training GFLOP/s that npm run bench:engine records), else the engine registry's assumed figure
(native 20, tfjs 5, cuda 250,000 GFLOP/s: the last is not measured).
Missing model directories and inputs are warnings here; the stage that needs them refuses to start.`,
    )
    .action(async (file: string, opts: { json?: boolean; resolved: boolean; explain?: boolean; tokenizer?: string }) => {
      if (existsSync(file.replace(/\.(idx|bin)$/, '') + '.idx')) return inspectMegatron(file, opts);
      // Neither a file nor a dataset prefix: say both were looked for (B53).
      if (!existsSync(file)) throw new UserError(`${file}: no such recipe file, and no Megatron dataset ${file.replace(/\.(idx|bin)$/, '')}.idx`);
      const kit = dataDir();
      const loaded = await loadRecipeDetailed(file, { dataDir: kit });
      const { recipe } = loaded;
      const missing = checkInputs(recipe, ['model', 'proxy', 'embedder', 'corpus', 'pile_test', 'tokenizer']);
      const est = await estimate(recipe, loaded.model, kit);
      const gpu = recipe.engine.kind === 'cuda' && loaded.model.config ? gpuMemory(recipe, loaded.model.config) : undefined;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ recipe, hash: recipeHash(recipe), notes: loaded.notes, missing, estimates: { ...est, gpuMemory: gpu } }, null, 2) + '\n');
        return;
      }
      const out: string[] = [];
      if (opts.resolved) {
        const yaml = toYaml(recipe).trimEnd();
        out.push(`# ${displayPath(recipe.file)}, resolved`, opts.explain ? withGeneratedComments(yaml) : yaml, '');
      }
      if (loaded.notes.length) out.push('notes:', ...loaded.notes.map((n) => `  ${n}`));
      if (missing.length) out.push('missing inputs (the stage that needs them will refuse to start):', ...missing.map((m) => `  ${m}`));
      out.push(...summary(recipe.method, recipe.model.init, loaded.model.kind, est));
      if (gpu) out.push(gpuLine(recipe, gpu));
      out.push(`resume hash: ${recipeHash(recipe)}`);
      process.stdout.write(out.join('\n') + '\n');
    });
}

/** Documents, tokens, dtype and the first document decoded: enough to check an export by eye. */
async function inspectMegatron(file: string, opts: { json?: boolean; tokenizer?: string }): Promise<void> {
  // An export's files are checked against its SHA256SUMS before they are read.
  const abs = path.resolve(file.replace(/\.(idx|bin)$/, ''));
  const out = path.dirname(path.dirname(abs));
  const rel = path.relative(out, abs);
  const bad = await damagedFiles(out, [`${rel}.idx`, `${rel}.bin`]);
  if (bad?.length) throw new UserError(`${path.join(out, bad[0])} fails its sha256 check (${SUMS_FILE}): damaged since the export; run cpt export again`);
  const d = openMegatron(file);
  try {
    const prefix = file.replace(/\.(idx|bin)$/, '');
    const tokFile = opts.tokenizer ?? path.join(path.dirname(prefix), '..', 'tokenizer.json');
    let first: string | null = null;
    if (d.items > 0 && existsSync(tokFile)) {
      const tok = await loadTokenizer(tokFile);
      first = tok.decode(Array.from(d.item(0)));
      await tok.close();
    }
    const info = { prefix, dtype: d.dtype, documents: d.docs, items: d.items, tokens: d.tokens, mean_tokens_per_doc: d.docs ? d.tokens / d.docs : 0, first_document: first };
    if (opts.json) return void process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    process.stdout.write(
      `${prefix} (Megatron indexed dataset, ${d.dtype})\n` +
        `documents: ${fmtCount(d.docs)}  items: ${fmtCount(d.items)}  tokens: ${fmtCount(d.tokens)} (${info.mean_tokens_per_doc.toFixed(1)} per document)\n` +
        (first === null ? `first document: (no tokenizer.json at ${tokFile}; pass --tokenizer)\n` : `first document (${d.sizes[0]} tokens):\n${first.slice(0, 2000)}${first.length > 2000 ? ' …' : ''}\n`),
    );
  } finally {
    d.close();
  }
}

/** GPU sizes (GiB) a plan is compared with; the CUDA context and cuBLASLt take about 0.5 GiB more. */
const GPU_GIB = [16, 24, 40, 48, 80, 141];
const CONTEXT_BYTES = 0.5 * 2 ** 30;

interface GpuMemory {
  /** Most bytes the engine holds at once, from its own allocations (simulated). */
  peakBytes?: number;
  /** GPU sizes in GiB that hold peakBytes plus the context. */
  fits?: number[];
  error?: string;
}

function gpuMemory(r: Recipe, config: NeoXConfig): GpuMemory {
  try {
    const peakBytes = cudaPeakBytes(config, { precision: r.engine.precision, recompute: r.engine.recompute, microBatch: r.train.micro_batch, seqLen: r.train.seq_len });
    return { peakBytes, fits: GPU_GIB.filter((g) => peakBytes + CONTEXT_BYTES <= g * 2 ** 30) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function gpuLine(r: Recipe, g: GpuMemory): string {
  if (g.peakBytes === undefined) return `gpu memory: not counted (${g.error})`;
  const what = `the cuda engine's own allocations for one step of ${r.train.micro_batch} × ${r.train.seq_len} tokens, ${r.engine.precision}, recompute ${r.engine.recompute ? 'on' : 'off'}, counted on the simulator; the CUDA context adds ~0.5 GiB`;
  const fits = g.fits!.length
    ? `fits a ${g.fits!.join(' / ')} GiB GPU`
    : `does not fit one ${GPU_GIB.at(-1)} GiB GPU: set engine.recompute, lower train.micro_batch, or hand off to GPT-NeoX (cpt export --to neox)`;
  return `gpu memory: ${fmtBytes(g.peakBytes)} at peak (${what}): ${fits}`;
}

function summary(method: string, init: string, kind: 'preset' | 'dir', e: Estimates): string[] {
  const t = e.train;
  const lines = [
    `model: ${kind === 'preset' ? `${init} (fresh init)` : init}${e.params ? `: ${fmtCount(e.params.total)} parameters (${fmtCount(e.params.embedding)} in the input embedding; shape: ${e.params.from})` : ' (shape unknown: no config.json and no Pythia size in the name)'}`,
    `${method === 'tacp' ? 'task text' : 'corpus'} tokens: ${fmtCount(e.corpus.tokens)}${e.corpus.estimated ? ' (estimate from ' : ' (from '}${e.corpus.from})`,
    `training: ${fmtCount(t.tokens)} tokens = ${t.steps} step${t.steps === 1 ? '' : 's'} (${t.microBatchesPerStep} micro-batches per step), limited by ${t.limitedBy}; one pass over the selection = ${fmtCount(t.selectedTokens)} tokens`,
  ];
  if (e.memory) {
    const m = e.memory;
    lines.push(`memory: ${fmtBytes(m.total)} = weights ${fmtBytes(m.weights)} + grads ${fmtBytes(m.grads)} + Adam ${fmtBytes(m.adam)} + activations ${fmtBytes(m.activations)} (${m.assumption})`);
  }
  if (e.time) {
    const tm = e.time;
    lines.push(
      `time: ${fmtDuration(tm.secondsPerBillion)} per billion tokens, ~${fmtDuration(tm.secondsTotal)} for this run (${fmtCount(tm.flopsPerToken)} FLOPs/token at ${Number(tm.gflops.toPrecision(4))} GFLOP/s, ${tm.gflopsFrom})`,
    );
  }
  return lines;
}
