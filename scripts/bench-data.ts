/**
 * Data-stage throughput on the kit's financial corpus (Reuters-21578 + 2023 10-K sections):
 *  - prepare: raw files → Arrow shards (MB of input per second);
 *  - tokenize: our byte-level BPE (worker threads) vs HF's Rust tokenizers (@anush008/tokenizers,
 *    its batch API) on the same texts in the same run, cold caches for both;
 *  - document pipeline: cpt's token cache (Arrow shards → tokenize → token shards) against
 *    datatrove's (jsonl shards of the same documents → DocumentTokenizer → token files, one task
 *    per shard on as many processes as cores; scripts/anchors/datatrove_tokenize.py, .peers/),
 *    same documents, same ids plus one EOS each;
 *  - pack: token ids → shuffled rows of 2048.
 * Ends with one name=value line per figure.
 */
import { existsSync, mkdirSync, writeFileSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Tokenizer as HfTokenizer } from '@anush008/tokenizers';
import { loadTokenizer, packDocuments, prepareCorpus, readDocs, tokenizeCorpus } from '../src/data/index.js';
import { ROOT } from '../src/util/paths.js';
import type { SourceSpec } from '../src/recipe/types.js';
import { dataDir } from '../src/util/paths.js';

const KIT = dataDir();
const TOKENIZER = path.join(KIT, 'tokenizer/20B_tokenizer.json');
const specs: SourceSpec[] = [
  { name: 'reuters', path: path.join(KIT, 'corpus/fin/reuters21578'), format: 'reuters-sgml', include: '*.sgm', fields: [], encoding: 'latin1', skip_bad: false },
  { name: 'sec10k', path: path.join(KIT, 'corpus/fin/sec10k_2023'), format: 'json', fields: ['item1', 'item1a', 'item7', 'item7a'], encoding: 'utf-8', skip_bad: false },
];

/** datatrove over the texts written as one jsonl shard per core; a reason string when it is not installed. */
function datatrove(texts: string[], cores: number): { docs: number; tokens: number; seconds: number } | string {
  const py = process.env.CPT_PEER_PYTHON || path.join(ROOT, '.peers', 'bin', 'python');
  if (!existsSync(py) || spawnSync(py, ['-c', 'import datatrove'], { encoding: 'utf8' }).status !== 0)
    return `not installed for ${py} (python3 -m venv .peers && .peers/bin/pip install -r test/peers/requirements.txt)`;
  const dir = path.join(tmp, 'jsonl');
  mkdirSync(dir, { recursive: true });
  const per = Math.ceil(texts.length / cores);
  for (let k = 0; k < cores; k++)
    writeFileSync(path.join(dir, `${k}.jsonl`), texts.slice(k * per, (k + 1) * per).map((text, i) => JSON.stringify({ id: `${k}-${i}`, text })).join('\n') + '\n');
  const r = spawnSync(py, [path.join(ROOT, 'scripts', 'anchors', 'datatrove_tokenize.py'), dir, path.join(tmp, 'datatrove'), TOKENIZER, String(cores)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`datatrove failed:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { docs: number; tokens: number; seconds: number };
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-bench-data-'));
try {
  console.log(`cores: ${os.availableParallelism()}, load average: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine slows every figure)`);
  let t = performance.now();
  const m = await prepareCorpus(specs, path.join(tmp, 'fin'), { shardMb: 64, force: true });
  const prepS = (performance.now() - t) / 1000;
  const prepMbS = m.totals.input_bytes / 1e6 / prepS;
  console.log(`prepare: ${(m.totals.input_bytes / 1e6).toFixed(1)} MB in, ${m.totals.docs} docs, ${m.shards.length} shards in ${prepS.toFixed(2)}s → ${prepMbS.toFixed(1)} MB/s`);

  const texts: string[] = [];
  for await (const b of readDocs(path.join(tmp, 'fin'))) for (const d of b) texts.push(d.text);
  const chars = texts.reduce((a, s) => a + s.length, 0);

  // Peer first, then ours, each on a fresh tokenizer (no warm word caches).
  const hf = HfTokenizer.fromFile(TOKENIZER);
  t = performance.now();
  const ref = await hf.encodeBatch(texts, { addSpecialTokens: false });
  const peerS = (performance.now() - t) / 1000;
  const tokens = ref.reduce((a, e) => a + e.getIds().length, 0);

  const tok = await loadTokenizer(TOKENIZER);
  t = performance.now();
  const ours = await tok.encodeBatch(texts);
  const oursS = (performance.now() - t) / 1000;
  const ourTokens = ours.reduce((a, x) => a + x.length, 0);
  if (ourTokens !== tokens) throw new Error(`token counts differ: ours ${ourTokens}, HF ${tokens}`);

  const single = await loadTokenizer(TOKENIZER, { threads: 1 });
  t = performance.now();
  for (const x of texts) single.encode(x);
  const singleS = (performance.now() - t) / 1000;

  console.log(`tokenize: ${texts.length} docs, ${(chars / 1e6).toFixed(1)} M chars, ${tokens} tokens`);
  console.log(`  ours (encodeBatch, ${os.availableParallelism()} threads incl. worker start-up): ${oursS.toFixed(2)}s → ${(tokens / oursS / 1e3).toFixed(0)}k tokens/s`);
  console.log(`  ours (encode, one thread, cold cache): ${singleS.toFixed(2)}s → ${(tokens / singleS / 1e3).toFixed(0)}k tokens/s`);
  console.log(`  HF tokenizers (Rust, batch): ${peerS.toFixed(2)}s → ${(tokens / peerS / 1e3).toFixed(0)}k tokens/s`);

  // Document pipelines: ours writes the token cache beside the shards; datatrove its token files.
  const cores = os.availableParallelism();
  const cacheTok = await loadTokenizer(TOKENIZER);
  t = performance.now();
  const cached = await tokenizeCorpus(path.join(tmp, 'fin'), cacheTok);
  const cacheS = (performance.now() - t) / 1000;
  await cacheTok.close();
  console.log(`document pipeline: ours (Arrow shards → token cache, ${cores} threads): ${cached.docs} docs in ${cacheS.toFixed(2)}s → ${(cached.tokens / cacheS / 1e3).toFixed(0)}k tokens/s`);
  const dt = datatrove(texts, cores);
  if (typeof dt === 'string') console.log(`  datatrove: ${dt}`);
  else {
    // Its token files, shard by shard, are our ids with EOS (id 0) after each document.
    const got = new Uint16Array(dt.tokens);
    let at = 0;
    for (let k = 0; k < cores; k++) {
      const b = await fs.readFile(path.join(tmp, 'datatrove', 'tokens', `${String(k).padStart(5, '0')}_unshuffled.ds`));
      got.set(new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2), at);
      at += b.byteLength / 2;
    }
    let i = 0;
    for (const ids of ours) for (const id of [...ids, 0]) if (got[i++] !== id) throw new Error(`datatrove's ids differ from ours at token ${i - 1}`);
    if (i !== dt.tokens || dt.docs !== cached.docs) throw new Error(`datatrove wrote ${dt.docs} docs / ${dt.tokens} tokens, ours ${cached.docs} docs / ${i} tokens with EOS`);
    console.log(`  datatrove (JsonlReader → DocumentTokenizer, ${cores} tasks on ${cores} processes): ${dt.seconds.toFixed(2)}s → ${(cached.tokens / dt.seconds / 1e3).toFixed(0)}k tokens/s (the same ids, + EOS)`);
  }

  t = performance.now();
  const pm = await packDocuments({ docs: (async function* () { yield ours.map((ids, i) => ({ id: String(i), ids })); })(), seqLen: 2048, seed: 1, out: path.join(tmp, 'train.json') });
  const packS = (performance.now() - t) / 1000;
  console.log(`pack: ${pm.count} rows of 2048 in ${packS.toFixed(2)}s → ${(pm.tokens / packS / 1e6).toFixed(1)} M tokens/s`);
  await tok.close();

  console.log(`prepare_mb_s=${prepMbS.toFixed(2)}`);
  console.log(`tokenize_tok_s=${Math.round(tokens / oursS)}`);
  console.log(`tokenize_single_thread_tok_s=${Math.round(tokens / singleS)}`);
  console.log(`peer_tokenize_tok_s=${Math.round(tokens / peerS)}`);
  console.log(`tokenize_ratio=${(peerS / oursS).toFixed(2)}`);
  console.log(`pack_tok_s=${Math.round(pm.tokens / packS)}`);
  console.log(`pipeline_tok_s=${Math.round(cached.tokens / cacheS)}`);
  if (typeof dt !== 'string') {
    console.log(`peer_datatrove_pipeline_tok_s=${Math.round(cached.tokens / dt.seconds)}`);
    console.log(`pipeline_ratio=${(dt.seconds / cacheS).toFixed(2)}`);
  }
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
