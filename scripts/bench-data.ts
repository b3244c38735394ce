/**
 * Data-stage throughput on the kit's financial corpus (Reuters-21578 + 2023 10-K sections):
 *  - prepare: raw files → Arrow shards (MB of input per second);
 *  - tokenize: our byte-level BPE (worker threads) vs HF's Rust tokenizers (@anush008/tokenizers,
 *    its batch API) on the same texts in the same run, cold caches for both;
 *  - pack: token ids → shuffled rows of 2048.
 * Ends with one name=value line per figure.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@anush008/tokenizers';
import { loadTokenizer, packDocuments, prepareCorpus, readDocs } from '../src/data/index.js';
import type { SourceSpec } from '../src/recipe/types.js';
import { dataDir } from '../src/util/paths.js';

const KIT = dataDir();
const TOKENIZER = path.join(KIT, 'tokenizer/20B_tokenizer.json');
const specs: SourceSpec[] = [
  { name: 'reuters', path: path.join(KIT, 'corpus/fin/reuters21578'), format: 'reuters-sgml', include: '*.sgm', fields: [], encoding: 'latin1', skip_bad: false },
  { name: 'sec10k', path: path.join(KIT, 'corpus/fin/sec10k_2023'), format: 'json', fields: ['item1', 'item1a', 'item7', 'item7a'], encoding: 'utf-8', skip_bad: false },
];

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
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
