// cpt against the real ecosystem, not our reading of it: Hugging Face transformers loads what cpt
// saves (and cpt loads what transformers saves) with the same logits; transformers' AutoTokenizer
// reads the tokenizer files cpt saves and agrees on ids; the Rust safetensors reader reads cpt's
// files in F32/F16/BF16; pyarrow reads every kind of shard cpt writes with the same rows.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defaultEngineKind } from '../../src/engine/index.js';
import { paramSpecs, type NeoXConfig } from '../../src/model/config.js';
import { initWeights } from '../../src/model/init.js';
import { loadModel, saveModel } from '../../src/model/load.js';
import { presetConfig } from '../../src/model/presets.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { loadTask, loadTokenizer, readDocs, readTokenized } from '../../src/data/index.js';
import { loadTaskConfig } from '../../src/eval/config.js';
import { limitDocs, runTask } from '../../src/eval/run.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { runSelection } from '../../src/select/index.js';
import { exportNeox } from '../../src/export/neox.js';
import { openMegatron } from '../../src/data/megatron.js';
import { dataDir } from '../../src/util/paths.js';
import { expectClose } from '../helpers/close.js';
import { hasPeer, peerVersions, runPeer } from '../helpers/peer.js';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cpt-interop-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const KIT_TOKENIZER = path.join(dataDir(), 'tokenizer', '20B_tokenizer.json');

const small = (o: Partial<NeoXConfig> = {}): NeoXConfig => ({
  ...presetConfig('pythia-14m'), hidden_size: 64, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 50304, max_position_embeddings: 64, ...o,
});

async function cptLogits(dir: string, ids: number[][]): Promise<Float32Array> {
  const m = await loadModel(dir);
  const e = await createEngine(await defaultEngineKind(), m.config, { threads: 1 });
  e.loadWeights(m.weights);
  const out = e.logits(Int32Array.from(ids.flat()), ids.length, ids[0].length);
  e.dispose();
  return out;
}

const HF_LOGITS = `
import sys, json, torch
from transformers import GPTNeoXForCausalLM
m = GPTNeoXForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
ids = torch.tensor(json.loads(sys.argv[2]))
with torch.no_grad():
    print(json.dumps(m(input_ids=ids).logits.flatten().tolist()))
`;

describe.runIf(hasPeer('torch', 'transformers'))('Hugging Face transformers', { timeout: 120_000 }, () => {
  const ids = [[5, 17, 3000, 42, 7, 99, 12345, 8], [1, 2, 3, 4, 5, 6, 7, 50000]];

  it('versions', () => console.log(`checked against ${JSON.stringify(peerVersions('torch', 'transformers'))}`));

  for (const [name, c] of [['parallel residual, untied', small()], ['sequential residual, tied, rotary 0.5, gelu_new', small({ use_parallel_residual: false, tie_word_embeddings: true, rotary_pct: 0.5, hidden_act: 'gelu_new' })]] as const) {
    it(`a model saved by cpt loads in GPTNeoXForCausalLM with the same logits (1e-4): ${name}`, async () => {
      const dir = path.join(tmp, `cpt-${name.replace(/\W+/g, '-')}`);
      await saveModel(dir, c, initWeights(c, 3));
      const hf = Float32Array.from(runPeer<number[]>(HF_LOGITS, dir, JSON.stringify(ids)));
      expectClose('logits', await cptLogits(dir, ids), hf, { atol: 1e-4 });
    });
  }

  it('a model saved by transformers (save_pretrained, safetensors) loads in cpt with the same logits', async () => {
    const dir = path.join(tmp, 'hf-saved');
    const hf = Float32Array.from(runPeer<number[]>(`
import sys, json, torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
torch.manual_seed(0)
c = GPTNeoXConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, vocab_size=50304,
                  max_position_embeddings=64, rotary_pct=0.25, use_parallel_residual=True, tie_word_embeddings=False)
m = GPTNeoXForCausalLM(c).eval()
for p in m.parameters():
    torch.nn.init.normal_(p, std=0.05)  # biases and norms too, so every tensor is exercised
m.save_pretrained(sys.argv[1], safe_serialization=True)
with torch.no_grad():
    print(json.dumps(m(input_ids=torch.tensor(json.loads(sys.argv[2]))).logits.flatten().tolist()))
`, dir, JSON.stringify(ids)));
    expect(readdirSync(dir)).toContain('model.safetensors');
    expectClose('logits', await cptLogits(dir, ids), hf, { atol: 1e-4 });
  });

  it('AutoTokenizer loads the tokenizer files cpt saves and gives the same ids on kit text', async () => {
    const c = small();
    const dir = path.join(tmp, 'with-tokenizer');
    await saveModel(dir, c, initWeights(c, 1), { tokenizer: KIT_TOKENIZER });
    const tok = await loadTokenizer(path.join(dir, 'tokenizer.json'));
    // Raw kit text (Reuters SGML with its markup, Hamlet), cut into 2,000-character pieces.
    const raw = readFileSync(path.join(dataDir(), 'corpus/fin/reuters21578/reut2-000.sgm'), 'latin1').slice(0, 60_000) +
      readFileSync(path.join(dataDir(), 'corpus/general/gutenberg_nltk/shakespeare-hamlet.txt'), 'utf8').slice(0, 40_000);
    const sample = Array.from({ length: Math.ceil(raw.length / 2000) }, (_, i) => raw.slice(i * 2000, (i + 1) * 2000));
    sample.push('  multiple   spaces\tand tabs\n\nnewlines, café, 東京, emoji 🚀 and <|endoftext|> text');
    const ours = await tok.encodeBatch(sample);
    await tok.close();
    const theirs = runPeer<number[][]>(`
import sys, json
from transformers import AutoTokenizer
t = AutoTokenizer.from_pretrained(sys.argv[1])
print(json.dumps([t.encode(x, add_special_tokens=False) for x in json.loads(sys.argv[2])]))
`, dir, JSON.stringify(sample));
    expect(theirs).toEqual(ours.map((x) => Array.from(x)));
  });
});

describe.runIf(hasPeer('safetensors', 'torch'))('safetensors (the Rust reader)', { timeout: 120_000 }, () => {
  it('reads what cpt writes in F32, F16 and BF16, value for value', () => {
    const c = small({ vocab_size: 128 });
    const w = initWeights(c, 5);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const file = path.join(tmp, `w-${dtype}.safetensors`);
      writeSafetensors(file, new Map(paramSpecs(c).map((s) => [s.name, { dtype, shape: s.shape, data: w.get(s.name)! }])));
      const theirs = runPeer<Record<string, { dtype: string; shape: number[]; sum: number; first: number[] }>>(`
import sys, json, torch
from safetensors.torch import load_file
t = load_file(sys.argv[1])
print(json.dumps({k: {"dtype": str(v.dtype), "shape": list(v.shape), "sum": float(v.double().sum()), "first": v.flatten()[:8].double().tolist()} for k, v in t.items()}))
`, file);
      expect(Object.keys(theirs).sort()).toEqual(paramSpecs(c).map((s) => s.name).sort());
      // Rounding of a 16-bit format: half an ulp of F16 (11-bit significand) or BF16 (8-bit).
      const rel = { F32: 0, F16: 2 ** -11, BF16: 2 ** -8 }[dtype];
      for (const s of paramSpecs(c)) {
        const t = theirs[s.name], ours = w.get(s.name)!;
        expect(t.dtype).toBe({ F32: 'torch.float32', F16: 'torch.float16', BF16: 'torch.bfloat16' }[dtype]);
        expect(t.shape).toEqual(s.shape);
        Array.from(ours.subarray(0, 8)).forEach((x, i) => expect(Math.abs(t.first[i] - x), `${s.name}[${i}]`).toBeLessThanOrEqual(rel * Math.abs(x) + 1e-7));
        const sum = ours.reduce((a, b) => a + b, 0);
        expect(Math.abs(t.sum - sum), `sum of ${s.name}`).toBeLessThanOrEqual(rel * ours.reduce((a, b) => a + Math.abs(b), 0) + 1e-4);
      }
    }
  });
});

describe.runIf(hasPeer('pyarrow'))('pyarrow', { timeout: 120_000 }, () => {
  it('reads the shards cpt writes (documents, token cache, scores) with the same rows and values', async () => {
    const t = await writeTinyRecipe({ name: 'arrow', method: 'ets-dacp', overrides: { selection: { budget: 0.2, sampling: 'hard', seed: 7 } }, dir: mkdtempSync(path.join(tmp, 'r-')) });
    const r = await loadRecipe(t.file);
    const sel = await runSelection(r);
    const tok = await loadTokenizer(r.data.tokenizer);
    const { tokenizeCorpus } = await import('../../src/data/index.js');
    await tokenizeCorpus(r.data.prepared_dir, tok);
    const docs: { id: string; text: string }[] = [];
    for await (const b of readDocs(r.data.prepared_dir)) docs.push(...b.map((d) => ({ id: d.id, text: d.text })));
    const toks: { id: string; ids: number[] }[] = [];
    for await (const b of readTokenized(r.data.prepared_dir, tok)) toks.push(...b.map((d) => ({ id: d.id, ids: Array.from(d.ids) })));
    await tok.close();
    const files = (dir: string, re: RegExp): string[] => readdirSync(dir, { recursive: true }).map(String).filter((f) => re.test(path.basename(f))).sort().map((f) => path.join(dir, f));
    const read = (fs: string[], cols: string[]) => runPeer<Record<string, unknown[]>>(`
import sys, json, pyarrow as pa, pyarrow.ipc as ipc
out = {c: [] for c in json.loads(sys.argv[1])}
for f in json.loads(sys.argv[2]):
    t = ipc.open_file(pa.memory_map(f)).read_all()
    for c in out: out[c] += t.column(c).to_pylist()
print(json.dumps(out))
`, JSON.stringify(cols), JSON.stringify(fs));
    const shards = files(r.data.prepared_dir, /^shard-\d+\.arrow$/);
    const d = read(shards, ['id', 'text']);
    expect(d.id).toEqual(docs.map((x) => x.id));
    expect(d.text).toEqual(docs.map((x) => x.text));
    const tk = read(files(path.join(r.data.prepared_dir, 'tokens'), /\.tokens\.arrow$/), ['id', 'ids']);
    expect(tk.id).toEqual(toks.map((x) => x.id));
    expect(tk.ids).toEqual(toks.map((x) => x.ids));
    const scores = read([sel.scores!], ['id', 'similarity']);
    expect(scores.id.length).toBeGreaterThan(0);
    expect((scores.similarity as number[]).every((x) => x === null || Number.isFinite(x))).toBe(true);
    const chosen = readFileSync(sel.ids, 'utf8').split('\n').filter(Boolean);
    expect(chosen.length).toBe(sel.record.selection.selected_docs);
    const scored = new Set(scores.id as string[]);
    expect(chosen.every((id) => scored.has(id))).toBe(true);
  });
});

describe.runIf(hasPeer('megatron.core.datasets.indexed_dataset'))('megatron-core', { timeout: 120_000 }, () => {
  it("megatron-core's own IndexedDataset reads a cpt export with identical documents", async () => {
    const t = await writeTinyRecipe({ name: 'mcore', method: 'ets-dacp', overrides: { selection: { budget: 0.3, sampling: 'soft', seed: 7 } }, dir: mkdtempSync(path.join(tmp, 'r-')) });
    const out = path.join(t.dir, 'neox');
    await exportNeox(await loadRecipe(t.file), { out, gpus: 1, log: () => {} });
    console.log(`checked against ${JSON.stringify(peerVersions('megatron.core'))}`);
    for (const split of ['train', 'valid', 'test']) {
      const prefix = path.join(out, 'data', `${split}_text_document`);
      const theirs = runPeer<{ docs: number[]; items: number[][] }>(`
import sys, json, warnings
warnings.filterwarnings("ignore")
from megatron.core.datasets.indexed_dataset import IndexedDataset
d = IndexedDataset(sys.argv[1])
print(json.dumps({"docs": d.document_indices.tolist(), "items": [d[i].tolist() for i in range(len(d))]}))
`, prefix);
      const ours = openMegatron(prefix);
      expect(theirs.docs).toEqual(Array.from(ours.docIndex, Number));
      expect(theirs.items).toEqual(Array.from({ length: ours.items }, (_, i) => Array.from(ours.item(i))));
      ours.close();
    }
  });
});

describe.runIf(hasPeer('lm_eval', 'torch', 'transformers'))('lm-evaluation-harness', { timeout: 300_000 }, () => {
  it("cpt eval gives lm-eval's HF backend's prompts, per-example log-likelihoods (1e-4) and accuracy on a local multiple-choice task", async () => {
    // One small model (random, logits spread so choices do not tie), the FPB task in lm-eval's own
    // format over local JSON files holding exactly the documents cpt scores, 2-shot first_n.
    const c = small({ max_position_embeddings: 2048 });
    const w = initWeights(c, 9);
    for (const x of [w.get('embed_out.weight')!]) for (let i = 0; i < x.length; i++) x[i] *= 20;
    const model = path.join(tmp, 'lmeval-model');
    await saveModel(model, c, w, { tokenizer: KIT_TOKENIZER });
    const base = await loadTaskConfig('fpb');
    const cfg = { ...base, num_fewshot: 2, fewshot_sampler: 'first_n' as const };
    const data = await loadTask(cfg.dataset.loader, dataDir());
    const docs = limitDocs(data.splits.test!, 24, false, 1);
    const dir = path.join(tmp, 'lmeval-task');
    mkdirSync(dir, { recursive: true });
    const jsonl = (ds: typeof docs) => ds.map((d) => JSON.stringify({ ...d.fields, gold: d.gold })).join('\n') + '\n';
    writeFileSync(path.join(dir, 'test.jsonl'), jsonl(docs));
    writeFileSync(path.join(dir, 'train.jsonl'), jsonl(data.splits.train!.slice(0, 8)));
    writeFileSync(path.join(dir, 'cpt_fpb_local.yaml'), YAML.stringify({
      task: 'cpt_fpb_local', dataset_path: 'json',
      dataset_kwargs: { data_files: { train: path.join(dir, 'train.jsonl'), test: path.join(dir, 'test.jsonl') } },
      test_split: 'test', fewshot_split: 'train', output_type: 'multiple_choice',
      doc_to_text: base.doc_to_text, doc_to_choice: base.doc_to_choice, doc_to_target: 'gold',
      target_delimiter: base.target_delimiter, fewshot_delimiter: base.fewshot_delimiter,
      fewshot_config: { sampler: 'first_n' }, metric_list: [{ metric: 'acc' }],
    }));
    const theirs = runPeer<{ acc: number; version: string; samples: { doc_id: number; context: string; lls: number[] }[] }>(`
import sys, json, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
import lm_eval
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
r = simple_evaluate(model="hf", model_args=f"pretrained={sys.argv[1]},dtype=float32", tasks=["cpt_fpb_local"], num_fewshot=2,
                    batch_size=1, device="cpu", task_manager=TaskManager(include_path=sys.argv[2]), log_samples=True)
def args(a):
    return list(a.values())[0]["arg_0"] if isinstance(a, dict) else a[0][0]
out = [{"doc_id": s["doc_id"], "context": args(s["arguments"]), "lls": [float(x[0]) for x in s["filtered_resps"]]} for s in r["samples"]["cpt_fpb_local"]]
print(json.dumps({"acc": r["results"]["cpt_fpb_local"]["acc,none"], "version": lm_eval.__version__, "samples": sorted(out, key=lambda s: s["doc_id"])}))
`, model, dir);
    console.log(`checked against lm-eval ${theirs.version}`);
    const m = await loadModel(model);
    const e = await createEngine(await defaultEngineKind(), m.config, { threads: 1 });
    e.loadWeights(m.weights);
    const tok = await loadTokenizer(path.join(model, 'tokenizer.json'));
    const ours = await runTask(cfg, e, tok, { dataDir: dataDir(), limit: 24, seed: 1, batch: 4, samples: true });
    e.dispose();
    await tok.close();
    expect(theirs.samples.length).toBe(docs.length);
    theirs.samples.forEach((s, i) => {
      expect(s.context, `document ${i}: prompt`).toBe(ours.samples![i].context);
      expectClose(`document ${i}: log-likelihoods`, Float32Array.from(ours.samples![i].ll), Float32Array.from(s.lls), { atol: 1e-4 });
    });
    expect(ours.metrics.find((x) => x.metric === 'acc')!.value).toBeCloseTo(theirs.acc, 12);
  });
});
