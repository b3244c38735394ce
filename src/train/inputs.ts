import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  isHeldOut, loadTokenizer, openPacked, packDocuments, pileTestDir, prepareCorpus, readManifest, readTokenized, taskTexts, tokenizeCorpus,
  type PackedDataset, type Tokenizer, type TokenizedDoc,
} from '../data/index.js';
import { runSelection, selectedIds } from '../select/index.js';
import { selectionProgress } from '../select/progress.js';
import type { Recipe, SourceSpec } from '../recipe/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import { dataDir } from '../util/paths.js';
import { Progress } from '../util/progress.js';

/** Everything the loop reads: packed training rows and the two fixed held-out sets. */
export interface TrainInputs {
  train: PackedDataset;
  finTest: PackedDataset | null;
  finTestRows: number;
  pileTest: PackedDataset | null;
  pileTestRows: number;
  /** The tasks' test-split texts, tokenized (monitor.task_test_tokens), or null when off. */
  taskTest: Int32Array[] | null;
  /** The tokenizer's end-of-text id (pads task-test rows). */
  eosId: number;
  vocabSize: number;
  /** One line for the settings table (where the rows came from). */
  describe: string;
  close(): void;
}

/**
 * Build (or reuse) the run's data under `<run_dir>/data/`:
 * - train: the selected documents (`<run_dir>/selection/ids.txt`, made by runSelection when absent),
 *   from the prepared corpus's token cache, packed into seq_len rows in a shuffle seeded by train.seed;
 * - fin-test: the held-out documents of the prepared corpus (isHeldOut(id, fin_test_fraction));
 * - pile-test: the recipe's general-domain `data.pile_test` sources.
 * Each packed file is rebuilt only when its inputs (fingerprint, tokenizer, seq_len, seed) change,
 * so a resume reads exactly the rows the run started with.
 */
export async function prepareTrainInputs(recipe: Recipe, o: { log: (l: string) => void }): Promise<TrainInputs> {
  const d = recipe.data, t = recipe.train;
  const dataOut = path.join(recipe.run_dir, 'data');
  const tok = await loadTokenizer(d.tokenizer);
  try {
    const corpus = await prepareCorpus(d.corpus, d.prepared_dir, { shardMb: d.shard_mb, onProgress: progressOf('prepare corpus', o.log) });
    if (!corpus.reused) o.log(`prepared ${corpus.totals.docs} documents into ${d.prepared_dir}`);

    const sel = await ensureSelection(recipe, o.log);
    // The selected ids, packed from the corpus's token cache (selection tokenized it); never Fin-test.
    const trainPacked = await packOnce(sel.corpusDir, tok, path.join(dataOut, 'train.packed.json'), t.seq_len, t.seed, o.log,
      { what: `selection ${sel.fingerprint}, not held out at ${d.fin_test_fraction}`, keep: (doc) => sel.ids.has(doc.id) && !isHeldOut(doc.id, d.fin_test_fraction) });

    const finRows = Math.ceil(recipe.monitor.fin_test_tokens / t.seq_len);
    let finTest: PackedDataset | null = null;
    if (finRows > 0) {
      finTest = await packOnce(d.prepared_dir, tok, path.join(dataOut, 'fin-test.packed.json'), t.seq_len, t.seed, o.log,
        { what: `held out at ${d.fin_test_fraction}`, keep: (doc) => isHeldOut(doc.id, d.fin_test_fraction) });
      if (finTest.count === 0) {
        o.log(`note: no held-out Fin-test rows (fin_test_fraction ${d.fin_test_fraction} of the corpus is less than one ${t.seq_len}-token row); Fin-test loss is off`);
        finTest = null;
      }
    }

    const pileRows = Math.ceil(recipe.monitor.pile_test_tokens / t.seq_len);
    let pileTest: PackedDataset | null = null;
    if (pileRows > 0 && d.pile_test.length > 0) {
      const pileDir = pileTestDir(d.prepared_dir); // where `cpt prepare RECIPE` puts it too
      await prepareCorpus(d.pile_test, pileDir, { shardMb: d.shard_mb, onProgress: progressOf('prepare pile-test', o.log) });
      pileTest = await packOnce(pileDir, tok, path.join(dataOut, 'pile-test.packed.json'), t.seq_len, t.seed, o.log, { what: 'all', keep: () => true });
      if (pileTest.count === 0) pileTest = null;
    }
    // Task-test texts: each task's test-split texts once, in file order, until that task's equal
    // share of the token budget (each cut to seq_len); the same rows at every monitor step.
    let taskTest: Int32Array[] | null = null;
    if (recipe.monitor.task_test_tokens > 0) {
      taskTest = [];
      const share = Math.ceil(recipe.monitor.task_test_tokens / d.tasks.length);
      let total = 0;
      for (const task of d.tasks) {
        let n = 0;
        for (const ids of await tok.encodeBatch(await taskTexts(task, 'test', dataDir()))) {
          if (n >= share) break;
          const row = ids.subarray(0, t.seq_len);
          if (row.length >= 2) taskTest.push(row), (n += row.length);
        }
        total += n;
      }
      o.log(`task-test: ${taskTest.length} texts, ${total} tokens from ${d.tasks.join(', ')}`);
    }
    const finTestRows = finTest ? Math.min(finRows, finTest.count) : 0;
    const pileTestRows = pileTest ? Math.min(pileRows, pileTest.count) : 0;
    for (const [name, want, have] of [['fin-test', finRows, finTestRows], ['pile-test', pileRows, pileTestRows]] as const) {
      if (have > 0 && have < want) o.log(`note: ${name} has ${have} rows, fewer than the ${want} its token budget asks for; using all of them`);
    }
    return {
      train: trainPacked,
      finTest,
      finTestRows,
      pileTest,
      pileTestRows,
      taskTest,
      eosId: tok.eosId,
      vocabSize: tok.vocabSize,
      describe: `${trainPacked.manifest.docs} selected docs from ${sel.corpusDir}`,
      close: () => {
        trainPacked.close();
        finTest?.close();
        pileTest?.close();
      },
    };
  } finally {
    await tok.close();
  }
}

/** The selected ids and their corpus: runSelection reuses an up-to-date selection and redoes a stale one. */
async function ensureSelection(recipe: Recipe, log: (l: string) => void): Promise<{ corpusDir: string; ids: Set<string>; fingerprint: string }> {
  const progress = selectionProgress();
  const r = await runSelection(recipe, { onProgress: progress.onProgress });
  progress.finish();
  const s = r.record.selection;
  log(`${r.reused ? 'reusing the selection' : 'selected'} ${r.ids}: ${s.selected_docs} docs, ${s.selected_tokens} tokens of ${r.record.corpus_dir}`);
  return { corpusDir: r.record.corpus_dir, ids: await selectedIds(r), fingerprint: r.record.fingerprint };
}

interface PackStamp {
  corpus: string;
  /** Which documents of it (the selection's fingerprint, the Fin-test split). */
  tokenizer: string;
  seq_len: number;
  seed: number;
  filter: string;
}

/** Tokenize (cached) and pack a prepared corpus once; reuse the packed file while its stamp matches. */
async function packOnce(
  corpusDir: string, tok: Tokenizer, out: string, seqLen: number, seed: number, log: (l: string) => void,
  filter: { what: string; keep: (d: TokenizedDoc) => boolean },
): Promise<PackedDataset> {
  const manifest = await readManifest(corpusDir);
  const stamp: PackStamp = { corpus: manifest.fingerprint, tokenizer: tok.hash, seq_len: seqLen, seed, filter: filter.what };
  const stampFile = out.replace(/\.json$/, '') + '.stamp.json';
  // The stamp names what was packed and the packed tokens' sha256: reused only when both hold.
  if (existsSync(out) && existsSync(stampFile)) {
    const { sha256, ...was } = JSON.parse(readFileSync(stampFile, 'utf8')) as PackStamp & { sha256?: string };
    if (JSON.stringify(was) === JSON.stringify(stamp)) {
      if (sha256 && existsSync(`${out}.bin`) && sha256File(`${out}.bin`) === sha256) return openPacked(out);
      if (sha256) log(`${out}.bin fails its sha256 check (damaged); packing it again`);
    }
  }

  const name = path.basename(out).replace(/\.packed\.json$/, '');
  // Shown only when shards are actually tokenized (a cached corpus reports nothing new).
  let tp: Progress | undefined;
  let last = 0;
  const t = await tokenizeCorpus(corpusDir, tok, {
    onProgress: (p) => {
      if (p.docs === last || !p.tokenized) return; // nothing new, or read from the cache
      tp ??= new Progress(`tokenize ${name}`, p.totalDocs, 'docs');
      tp.add(p.docs - last);
      last = p.docs;
    },
    onDamaged: (file) => log(`${file} fails its sha256 check (damaged); re-tokenizing its shard`),
  });
  tp?.finish(`${t.tokens} tokens`);
  async function* filtered(): AsyncGenerator<TokenizedDoc[]> {
    for await (const batch of readTokenized(corpusDir, tok)) {
      const kept = batch.filter(filter.keep);
      if (kept.length) yield kept;
    }
  }
  const pm = await packDocuments({ docs: filtered(), seqLen, seed, out, eosId: tok.eosId });
  await writeFileAtomic(stampFile, JSON.stringify({ ...stamp, sha256: sha256File(`${out}.bin`) }));
  log(`packed ${name}: ${pm.docs} docs → ${pm.count} rows × ${seqLen} tokens (${out})`);
  return openPacked(out);
}

function progressOf(label: string, log: (l: string) => void): (p: { docs: number; inputBytes: number; totalInputBytes: number }) => void {
  let lastT = 0;
  return (p) => {
    const now = Date.now();
    if (now - lastT < 2000) return;
    lastT = now;
    log(`${label}: ${p.docs} docs, ${(p.inputBytes / 1e6).toFixed(1)}/${(p.totalInputBytes / 1e6).toFixed(1)} MB`);
  };
}

export type { SourceSpec };
