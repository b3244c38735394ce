import path from 'node:path';
import { Command, Option } from 'commander';
import { loadRecipe } from '../recipe/load.js';
import type { InputFormat, SourceSpec } from '../recipe/types.js';
import { FORMATS, pileTestDir, prepareCorpus, verifyCorpus, verifyTokenCaches, type PrepareProgress, type PrepareResult } from '../data/index.js';
import { UserError } from '../util/errors.js';
import { fmtDuration } from '../util/progress.js';

interface PrepareFlags {
  input?: string;
  format?: string;
  out?: string;
  name?: string;
  field: string[];
  idField?: string;
  separator?: string;
  delimiter?: string;
  include?: string;
  encoding: string;
  skipBad?: boolean;
  shardMb?: string;
  force?: boolean;
  verify?: boolean;
}

export function register(program: Command): void {
  program
    .command('prepare')
    .argument('[recipe]', "recipe YAML: prepares data.corpus into data.prepared_dir and data.pile_test into <prepared_dir>.pile_test")
    .description('Read raw text sources into Arrow shards (id, text, source) with a manifest; skipped when inputs are unchanged')
    .option('--input <path>', 'ad-hoc: a file or a directory (walked recursively in sorted order)')
    .addOption(new Option('--format <fmt>', 'ad-hoc: input format').choices(FORMATS))
    .option('--out <dir>', 'ad-hoc: output directory for shards + manifest.json')
    .option('--name <name>', "ad-hoc: source label stored with each document (default: the input's base name)")
    .option('--field <path>', 'jsonl/json/csv: text field (JSON path like a.b, or CSV column); repeat for several (one doc per field)', collect, [])
    .option('--id-field <path>', 'jsonl/json/csv: field holding the document id (default: file name + line/record)')
    .option('--separator <re>', 'text: document separator, a regex or a preset: blank-lines (default), file, line, wikitext')
    .option('--delimiter <c>', 'csv: field delimiter (default ","; use $\'\\t\' for TSV)')
    .option('--include <glob>', 'only files matching this glob (on the file name, or on the relative path if it has a "/")')
    .addOption(new Option('--encoding <enc>', 'input text encoding').choices(['utf-8', 'latin1']).default('utf-8'))
    .option('--skip-bad', 'skip bad records (bad JSON, missing field, bad UTF-8, empty file) and count them, instead of stopping')
    .option('--shard-mb <n>', 'target shard size in MB (default: the recipe\'s data.shard_mb, else 64)')
    .option('--force', 'prepare again even if the manifest matches the inputs')
    .option('--verify', 'check the prepared shards (recipe, or --out) against their manifest (size, sha256) and their token caches against their checksums; prepares nothing')
    .addHelpText(
      'after',
      `
Examples:
  cpt prepare recipes/ets-dacp-tiny.yaml
  cpt prepare --input \${CPT_DATA}/corpus/fin/reuters21578 --format reuters-sgml --include '*.sgm' --encoding latin1 --out data/reuters
  cpt prepare --input \${CPT_DATA}/corpus/fin/sec10k_2023 --format json --field item1 --field item1a --field item7 --field item7a --out data/10k

Every dropped record is counted in manifest.json under "skipped" (e.g. no_body for Reuters stories without a body).`,
    )
    .action(async (recipeFile: string | undefined, flags: PrepareFlags) => {
      const shardMbFlag = flags.shardMb === undefined ? undefined : Number(flags.shardMb);
      if (shardMbFlag !== undefined && !(shardMbFlag > 0)) throw new UserError(`--shard-mb: expected a positive number, got "${flags.shardMb}"`);
      if (recipeFile) {
        if (flags.input || flags.format || flags.out) throw new UserError('give either a recipe or --input/--format/--out, not both');
        const recipe = await loadRecipe(recipeFile);
        if (flags.verify) return verify([recipe.data.prepared_dir, ...(recipe.data.pile_test.length ? [pileTestDir(recipe.data.prepared_dir)] : [])]);
        const shardMb = shardMbFlag ?? recipe.data.shard_mb;
        await run('corpus', recipe.data.corpus, recipe.data.prepared_dir, shardMb, !!flags.force);
        if (recipe.data.pile_test.length) await run('pile_test', recipe.data.pile_test, pileTestDir(recipe.data.prepared_dir), shardMb, !!flags.force);
        return;
      }
      if (flags.verify) {
        if (!flags.out) throw new UserError('prepare --verify: give a recipe or --out <dir> (the prepared corpus to check)');
        return verify([path.resolve(flags.out)]);
      }
      const missing = (['input', 'format', 'out'] as const).filter((k) => !flags[k]);
      if (missing.length) throw new UserError(`prepare: give a recipe, or --input, --format and --out (missing ${missing.map((k) => '--' + k).join(', ')}); see cpt prepare --help`);
      const input = path.resolve(flags.input!);
      const spec: SourceSpec = {
        name: flags.name ?? path.basename(input),
        path: input,
        format: flags.format as InputFormat,
        fields: flags.field,
        id_field: flags.idField,
        separator: flags.separator,
        delimiter: flags.delimiter === '\\t' ? '\t' : flags.delimiter,
        include: flags.include,
        encoding: flags.encoding as 'utf-8' | 'latin1',
        skip_bad: !!flags.skipBad,
      };
      if ((spec.format === 'json' || spec.format === 'csv') && spec.fields.length === 0) throw new UserError(`--format ${spec.format} needs --field (the text field(s))`);
      await run(spec.name, [spec], path.resolve(flags.out!), shardMbFlag ?? 64, !!flags.force);
    });
}

async function verify(dirs: string[]): Promise<void> {
  let bad = 0, badTokens = 0;
  const show = (c: { file: string; ok: boolean; problem?: string }) => process.stdout.write(`${c.ok ? 'ok ' : 'BAD'} ${c.file}${c.problem ? `: ${c.problem}` : ''}\n`);
  for (const dir of dirs) {
    for (const c of await verifyCorpus(dir)) {
      if (!c.ok) bad++;
      show(c);
    }
    for (const c of await verifyTokenCaches(dir)) {
      if (!c.ok) badTokens++;
      show(c);
    }
  }
  if (bad) throw new UserError(`${bad} shard(s) do not match their manifest; re-run \`cpt prepare --force\``);
  if (badTokens) throw new UserError(`${badTokens} token cache file(s) damaged or stale; the next cpt select or cpt train re-tokenizes just those shards`);
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

async function run(label: string, specs: SourceSpec[], out: string, shardMb: number, force: boolean): Promise<PrepareResult> {
  const t0 = Date.now();
  let lastDraw = 0;
  const tty = process.stderr.isTTY;
  const onProgress = (p: PrepareProgress) => {
    const now = Date.now();
    if (now - lastDraw < (tty ? 250 : 5000)) return;
    lastDraw = now;
    const s = (now - t0) / 1000;
    const mbs = p.inputBytes / 1e6 / Math.max(s, 1e-3);
    const eta = p.inputBytes > 0 ? ((p.totalInputBytes - p.inputBytes) / p.inputBytes) * s : NaN;
    const line = `prepare ${label} [${p.source}] ${p.docs} docs | ${(p.inputBytes / 1e6).toFixed(1)}/${(p.totalInputBytes / 1e6).toFixed(1)} MB | ${mbs.toFixed(1)} MB/s | ${p.shards} shards | eta ${fmtDuration(eta)}`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : line + '\n');
  };
  const m = await prepareCorpus(specs, out, { shardMb, onProgress, force });
  if (tty) process.stderr.write('\r\x1b[K');
  const s = (Date.now() - t0) / 1000;
  if (m.reused) {
    process.stdout.write(`${label}: up to date in ${out} (${m.totals.docs} docs, ${m.shards.length} shards; inputs unchanged; --force to redo)\n`);
    return m;
  }
  const skipped = Object.entries(m.skipped).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  process.stdout.write(
    `${label}: ${m.totals.docs} docs, ${(m.totals.text_bytes / 1e6).toFixed(1)} MB text, ${m.shards.length} shards (${(m.totals.shard_bytes / 1e6).toFixed(1)} MB) → ${out}\n` +
      `  ${(m.totals.input_bytes / 1e6).toFixed(1)} MB read in ${s.toFixed(1)}s (${(m.totals.input_bytes / 1e6 / Math.max(s, 1e-3)).toFixed(1)} MB/s); skipped: ${skipped}\n` +
      m.sources.map((x) => `  ${x.name}: ${x.docs} docs from ${x.files} files${Object.keys(x.skipped).length ? `, skipped ${JSON.stringify(x.skipped)}` : ''}\n`).join(''),
  );
  return m;
}
