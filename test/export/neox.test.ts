// cpt export --to neox: the Megatron indexed-dataset bytes (checked against a hand-built file),
// round trips of real exports, the GPT-NeoX config's numbers, and the GPT-NeoX log reader.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIndex, MegatronWriter, openMegatron } from '../../src/data/megatron.js';
import { loadTokenizer, readTokenized } from '../../src/data/index.js';
import { exportNeox, neoxPlan, neoxYaml } from '../../src/export/neox.js';
import { modelInfo } from '../../src/recipe/model-info.js';
import { readNeoxRun } from '../../src/monitor/neox-log.js';
import { plotRuns } from '../../src/monitor/plot.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { ROOT } from '../../src/util/paths.js';
import { writeTinyRecipe } from '../helpers/tiny-recipe.js';
import { hasPeer, runPeer } from '../helpers/peer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cpt-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = { log: () => {} };

describe('Megatron indexed dataset (MMIDIDX)', () => {
  // Two documents, [1, 2] + EOD 0 and [300] + EOD 0, as GPT-NeoX's preprocess_data.py
  // --append-eod writes them with a uint16 vocabulary. Every byte written out by hand.
  const idx = Buffer.concat([
    Buffer.from('MMIDIDX\x00\x00', 'latin1'),
    Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), // version 1
    Buffer.from([8]), // dtype code 8 = uint16
    Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), // 2 items
    Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), // 3 doc-index entries
    Buffer.from([3, 0, 0, 0, 2, 0, 0, 0]), // sizes (int32)
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]), // byte pointers (int64)
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]), // doc index (int64)
  ]);
  const bin = Buffer.from([1, 0, 2, 0, 0, 0, 0x2c, 0x01, 0, 0]);

  it('cpt writes exactly the bytes of a hand-built file', () => {
    const w = new MegatronWriter(path.join(tmp, 'hand'), 'uint16', 50277);
    w.add(Int32Array.of(1, 2), 0);
    w.add(Int32Array.of(300), 0);
    expect(w.finish()).toEqual({ docs: 2, tokens: 5 });
    expect(readFileSync(path.join(tmp, 'hand.idx')).equals(idx)).toBe(true);
    expect(readFileSync(path.join(tmp, 'hand.bin')).equals(bin)).toBe(true);
    expect(encodeIndex([3, 2], 'uint16').equals(idx)).toBe(true);
  });

  it('reads the hand-built file (and int32 files) back', () => {
    writeFileSync(path.join(tmp, 'byhand.idx'), idx);
    writeFileSync(path.join(tmp, 'byhand.bin'), bin);
    const d = openMegatron(path.join(tmp, 'byhand'));
    expect([d.dtype, d.items, d.docs, d.tokens]).toEqual(['uint16', 2, 2, 5]);
    expect(Array.from(d.docIndex, Number)).toEqual([0, 1, 2]);
    expect(Array.from(d.item(0))).toEqual([1, 2, 0]);
    expect(Array.from(d.item(1))).toEqual([300, 0]);
    d.close();
    const w = new MegatronWriter(path.join(tmp, 'wide'), 'int32', 100_000);
    w.add(Int32Array.of(70_000, 5), 0);
    w.finish();
    const e = openMegatron(path.join(tmp, 'wide.bin'));
    expect(readFileSync(path.join(tmp, 'wide.idx')).readUInt8(17)).toBe(4); // int32
    expect(Array.from(e.item(0))).toEqual([70_000, 5, 0]);
    e.close();
  });

  it('refuses what would store wrong ids: a vocabulary too large for uint16, an id outside it, a bad file', () => {
    expect(() => new MegatronWriter(path.join(tmp, 'big'), 'uint16', 70_000)).toThrow(/a 70000-token vocabulary does not fit uint16/);
    const w = new MegatronWriter(path.join(tmp, 'oob'), 'uint16', 1000);
    expect(() => w.add(Int32Array.of(5, 1000))).toThrow(/token id 1000 is outside the vocabulary \[0, 1000\)/);
    w.abort();
    writeFileSync(path.join(tmp, 'junk.idx'), 'not an index');
    expect(() => openMegatron(path.join(tmp, 'junk'))).toThrow(/not a Megatron mmap index/);
  });
});

describe('cpt export --to neox', { timeout: 240_000 }, () => {
  for (const [method, extra] of [['ets-dacp', { selection: { budget: 0.3, sampling: 'hard', seed: 7 } }], ['dacp', {}]] as const) {
    it(`${method}: documents, ids and order equal cpt's own tokenization of the selection; Fin-test and Pile-test beside it`, async () => {
      const t = await writeTinyRecipe({ name: `x-${method}`, method, overrides: extra, dir: mkdtempSync(path.join(tmp, 'r-')) });
      const r = await loadRecipe(t.file);
      const out = path.join(t.dir, 'neox');
      const m = await exportNeox(r, { out, gpus: 2, ...quiet });
      const tok = await loadTokenizer(r.data.tokenizer);
      const want: Int32Array[] = [];
      // The selected ids (ids.txt), in corpus order, from the prepared corpus's token cache.
      const chosen = new Set(readFileSync(path.join(r.run_dir, 'selection', 'ids.txt'), 'utf8').split('\n').filter(Boolean));
      for await (const b of readTokenized(r.data.prepared_dir, tok)) for (const d of b) if (chosen.has(d.id)) want.push(Int32Array.from([...d.ids, tok.eosId]));
      expect(want.length).toBe(chosen.size);
      await tok.close();
      const d = openMegatron(path.join(out, 'data', 'train_text_document'));
      expect([d.dtype, d.items, d.docs]).toEqual(['uint16', want.length, want.length]);
      expect(Array.from(d.docIndex, Number)).toEqual(Array.from({ length: want.length + 1 }, (_, i) => i));
      for (let i = 0; i < want.length; i++) expect(Array.from(d.item(i)), `document ${i}`).toEqual(Array.from(want[i]));
      d.close();
      expect(m.files.train).toMatchObject({ docs: want.length, tokens: want.reduce((n, x) => n + x.length, 0) });
      for (const s of ['valid', 'test'] as const) {
        const v = openMegatron(path.join(out, 'data', `${s}_text_document`));
        expect(v.docs).toBe(m.files[s]!.docs);
        expect(v.docs).toBeGreaterThan(0);
        v.close();
      }
      expect(readFileSync(path.join(out, 'tokenizer.json')).equals(readFileSync(r.data.tokenizer))).toBe(true);
      expect(readFileSync(path.join(out, 'README.md'), 'utf8')).toMatch(/deepy\.py train\.py .*neox\.yml/);
    });
  }

  it('step 1 converts the recipe\'s own model.init: transformers loads it from the export\'s cache as GPT-NeoX\'s converter asks for it', async () => {
    const t = await writeTinyRecipe({ name: 'conv', overrides: { train: { max_steps: 2 } }, dir: mkdtempSync(path.join(tmp, 'r-')) });
    const out = path.join(t.dir, 'neox');
    await exportNeox(await loadRecipe(t.file), { out, gpus: 1, ...quiet });
    const readme = readFileSync(path.join(out, 'README.md'), 'utf8');
    const m = /--hf-model-name (\S+) --revision (\d+) --cache-dir (\S+)/.exec(readme)!;
    expect(m[1]).toBe('cpt-conv-base');
    expect(readme).toContain("sed -i 's/neox_args.comet()/neox_args.initialize_comet()/' tools/ckpts/convert_hf_to_sequential.py");
    if (!hasPeer('transformers', 'torch')) return;
    // The converter's own two calls (tools/ckpts/convert_hf_to_sequential.py at ea7aefd8), offline.
    const same = runPeer<{ same: boolean; tensors: number }>(`
import json, os, sys, torch
os.environ["HF_HUB_OFFLINE"] = "1"
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
name, rev, cache, init = sys.argv[1:]
kw = dict(revision=f"step{rev}", cache_dir=os.path.join(cache, f"{name}/step{rev}"))
config = GPTNeoXConfig.from_pretrained(f"EleutherAI/{name}", **kw)
hub = GPTNeoXForCausalLM.from_pretrained(f"EleutherAI/{name}", config=config, **kw).state_dict()
own = GPTNeoXForCausalLM.from_pretrained(init).state_dict()
print(json.dumps({"same": hub.keys() == own.keys() and all(torch.equal(hub[k], own[k]) for k in own), "tensors": len(own)}))`, m[1], m[2], m[3], t.modelDir);
    expect(same).toEqual({ same: true, tensors: expect.any(Number) });
  });

  it('neox.yml follows the recipe: iterations cover the budget; lr, min_lr, warmup, betas, eps, clip, decay as set; PyYAML reads numbers as numbers', async () => {
    const t = await writeTinyRecipe({ name: 'cfg', method: 'ets-dacp', overrides: { selection: { budget: 0.2, sampling: 'soft', seed: 7 }, train: { lr: 2e-4, min_lr: 2e-5, warmup: 0.05, beta1: 0.85, beta2: 0.97, eps: 1e-7, clip: 0.7, weight_decay: 0.05, batch_tokens: 1024, micro_batch: 2, seq_len: 32, max_steps: 100_000 }, monitor: { every: 7 }, checkpoint: { every: 9 } }, dir: mkdtempSync(path.join(tmp, 'r-')) });
    const r = await loadRecipe(t.file);
    const out = path.join(t.dir, 'neox');
    const m = await exportNeox(r, { out, gpus: 4, ...quiet });
    const text = readFileSync(path.join(out, 'neox.yml'), 'utf8');
    const c = YAML.parse(text) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(c.optimizer).toEqual({ type: 'Adam', params: { lr: 2e-4, betas: [0.85, 0.97], eps: 1e-7 } });
    expect([c.min_lr, c.warmup, c.gradient_clipping, c.weight_decay, c.lr_decay_style]).toEqual([2e-5, 0.05, 0.7, 0.05, 'cosine']);
    expect([c.seq_length, c.train_micro_batch_size_per_gpu, c.gradient_accumulation_steps]).toEqual([32, 2, 4]); // 1024 = 2 × 32 × 4 × 4 GPUs
    expect(c.train_iters * 2 * 4 * 4 * 32).toBeGreaterThanOrEqual(m.files.train!.tokens);
    expect((c.train_iters - 1) * 2 * 4 * 4 * 32).toBeLessThan(m.files.train!.tokens);
    expect(c.lr_decay_iters).toBe(c.train_iters);
    expect([c.eval_interval, c.checkpoint_factor, c.finetune, c.tokenizer_type]).toEqual([7, 9, true, 'HFTokenizer']);
    expect([c.num_layers, c.hidden_size, c.num_attention_heads, c.rotary_pct, c.gpt_j_residual, c.no_weight_tying, c.pos_emb]).toEqual([2, 64, 4, 0.25, true, true, 'rotary']);
    expect(c.train_data_paths).toEqual([path.join(out, 'data', 'train_text_document')]);
    // What current GPT-NeoX reads: the converter's `latest` sits in checkpoints/, bf16 from
    // precision + bf16 (an fp16 block means fp16), exact GELU unfused (the fused one is tanh).
    expect(c.load).toBe(path.join(out, 'checkpoints'));
    expect(readFileSync(path.join(out, 'README.md'), 'utf8')).toMatch(new RegExp(`--output-dir ${path.join(out, 'checkpoints', 'base')} `));
    expect([c.precision, c.bf16, c.fp16, c.openai_gelu, c.bias_gelu_fusion, c.activation]).toEqual(['bfloat16', { enabled: true }, undefined, undefined, false, 'gelu']);
    expect(c.test_data_paths).toEqual([path.join(out, 'data', 'test_text_document')]);
    expect(readFileSync(path.join(out, 'README.md'), 'utf8')).not.toMatch(/--vocab-is-hf-tokenizer/);
    // soft sampling is materialised as a document list that meets the token budget
    expect(m.sampling).toBe('soft');
    expect(m.sampling_note).toMatch(/materialised/);
    expect(m.files.train!.tokens - m.files.train!.docs).toBeGreaterThanOrEqual(m.budget_tokens);
    // GPT-NeoX loads configs with PyYAML, which reads "1e-7" as a string; ours says 1.0e-7.
    expect(text).toMatch(/eps: 1\.0e-7/);
    const py = spawnSync('python3', ['-c', 'import sys, yaml, json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path.join(out, 'neox.yml')], { encoding: 'utf8' });
    if (py.status === 0) expect(JSON.parse(py.stdout)).toEqual(c);
    else console.log('PyYAML not installed: skipped reading neox.yml with it');
  });

  it('model parallelism: Pythia-6.9b on 8 GPUs has 4 data-parallel ranks; a --gpus it does not divide is refused before anything is written', async () => {
    const r = await loadRecipe(path.join(ROOT, 'recipes', 'dacp-6.9b.yaml'));
    const c = modelInfo(r.model.init, (p) => p).config!;
    const p = neoxPlan(r, c, 8, 1e9);
    expect(p.tokensPerIter).toBe(r.train.batch_tokens);
    expect(p.tokensPerIter).toBe(r.train.micro_batch * r.train.seq_len * p.accum * 4);
    expect(() => neoxPlan(r, c, 3, 1e9)).toThrow('--gpus 3: GPT-NeoX splits this model over model_parallel_size 2 GPUs; use a multiple of 2');
    const out = path.join(mkdtempSync(path.join(tmp, 'r-')), 'neox');
    await expect(exportNeox(r, { out, gpus: 3, ...quiet })).rejects.toThrow(/--gpus 3/);
    expect(existsSync(out)).toBe(false);
  });

  it('a selection smaller than one iteration is said to repeat; without a Pile-test the test split is Fin-test', async () => {
    const t = await writeTinyRecipe({ name: 'small', method: 'ets-dacp', overrides: { data: { pile_test: [] }, selection: { budget: 0.05 }, train: { batch_tokens: 65536, micro_batch: 4, seq_len: 32 } }, dir: mkdtempSync(path.join(tmp, 'r-')) });
    const out = path.join(t.dir, 'neox');
    const m = await exportNeox(await loadRecipe(t.file), { out, gpus: 1, ...quiet });
    expect(m.notes.find((n) => n.includes('pass over it'))).toMatch(/^the selection is \d+ tokens and 1 iteration\(s\) of 65536 tokens pass over it \d+\.\d times \(the recipe asks for 1\)/);
    const c = YAML.parse(readFileSync(path.join(out, 'neox.yml'), 'utf8')) as { test_data_paths: string[] };
    expect(c.test_data_paths).toEqual([path.join(out, 'data', 'valid_text_document')]);
  });

  // GPT-NeoX's own argument parsing, reader and GPT2Dataset on two exports (scripts/check-neox.sh);
  // runs where a GPT-NeoX checkout (NEOX_DIR) and a Python with its needs (NEOX_PYTHON) are given.
  it.runIf(!!process.env.NEOX_DIR)('GPT-NeoX\'s own code reads the exports (scripts/check-neox.sh)', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn('bash', [path.join(ROOT, 'scripts/check-neox.sh'), process.env.NEOX_DIR!], { cwd: ROOT });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d));
      c.stderr.on('data', (d: Buffer) => (out += d));
      c.on('close', (code) => resolve({ code, out }));
    });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^check_neox_all=pass$/m);
    expect(r.out.match(/^neox_tokens_per_iteration=pass/gm)).toHaveLength(2);
  });

  it('--out: a non-empty directory is refused (a GPT-NeoX checkout keeps its README.md); --force writes beside, never over, files cpt did not write; an earlier export is replaced', async () => {
    const t = await writeTinyRecipe({ name: 'outdir', dir: mkdtempSync(path.join(tmp, 'r-')) });
    const r = await loadRecipe(t.file);
    const out = path.join(t.dir, 'gpt-neox');
    mkdirSync(out);
    writeFileSync(path.join(out, 'README.md'), '# GPT-NeoX\n');
    await expect(exportNeox(r, { out, gpus: 1, ...quiet })).rejects.toThrow(`--out ${out} is not empty (README.md) and holds no earlier cpt export of this kind; choose another directory, or pass --force to write beside what is there`);
    await expect(exportNeox(r, { out, gpus: 1, force: true, ...quiet })).rejects.toThrow(`--out ${out}: README.md already there and not written by cpt export, which never replaces such files; choose another directory`);
    expect(readFileSync(path.join(out, 'README.md'), 'utf8')).toBe('# GPT-NeoX\n');
    expect(existsSync(path.join(out, 'data'))).toBe(false);
    const shared = path.join(t.dir, 'shared');
    mkdirSync(shared);
    writeFileSync(path.join(shared, 'notes.txt'), 'mine');
    await exportNeox(r, { out: shared, gpus: 1, force: true, ...quiet });
    expect(readFileSync(path.join(shared, 'notes.txt'), 'utf8')).toBe('mine');
    await exportNeox(r, { out: shared, gpus: 1, ...quiet }); // an earlier export: replaced, no --force needed
  });

  it('bad input: unknown --to, a wrong --dtype, --existing without a selection, one line each', async () => {
    const t = await writeTinyRecipe({ name: 'bad', dir: mkdtempSync(path.join(tmp, 'r-')) });
    const cli = (...a: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'export', t.file, ...a], { encoding: 'utf8' });
    for (const [args, msg] of [
      [['--to', 'megatron', '--out', path.join(t.dir, 'o')], 'cpt: --to: unknown target "megatron". Should be one of: neox, hf-trainer'],
      [['--to', 'neox', '--out', path.join(t.dir, 'o'), '--dtype', 'int64'], 'cpt: --dtype: expected uint16 or int32, got "int64"'],
      [['--to', 'neox', '--out', path.join(t.dir, 'o'), '--existing'], `cpt: no selection yet in ${path.join(t.dir, 'runs', 'bad', 'selection')}; run cpt select ${t.file} first (or drop --existing)`],
    ] as const) {
      const r = cli(...args);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([msg]);
    }
  });

  it('cpt inspect prints an exported dataset; cpt plot draws the GPT-NeoX run from its log', async () => {
    const t = await writeTinyRecipe({ name: 'plot', dir: mkdtempSync(path.join(tmp, 'r-')) });
    const out = path.join(t.dir, 'neox');
    const m = await exportNeox(await loadRecipe(t.file), { out, gpus: 1, ...quiet });
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'inspect', path.join(out, 'data', 'train_text_document')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`documents: ${m.files.train!.docs}`);
    expect(r.stdout).toMatch(/first document \(\d+ tokens\):\n\S/);
    // SHA256SUMS in sha256sum's own format checks a copy; a flipped byte is named by cpt inspect.
    expect(spawnSync('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' }).status).toBe(0);
    const bin = path.join(out, 'data', 'train_text_document.bin');
    const b = readFileSync(bin);
    b[3] ^= 1;
    writeFileSync(bin, b);
    expect(spawnSync('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' }).status).not.toBe(0);
    const damaged = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cpt.mjs'), 'inspect', path.join(out, 'data', 'train_text_document')], { encoding: 'utf8' });
    expect(damaged.status).toBe(1);
    expect(damaged.stderr.trim()).toBe(`cpt: ${bin} fails its sha256 check (SHA256SUMS): damaged since the export; run cpt export again`);
    b[3] ^= 1;
    writeFileSync(bin, b);
    // Lines in GPT-NeoX's own formats (megatron/logging.py and megatron/training.py).
    writeFileSync(path.join(out, 'train.log'), [
      ' iteration       10/      20 | consumed samples:          320 | elapsed time per iteration (ms): 5.0 | learning rate: 3.000E-03 | approx flops per GPU: 1.0TFLOPS | lm_loss: 7.500000E+00 | number of skipped iterations:   0 | number of nan iterations:   0 |',
      ' validation results at iteration 10 | lm_loss value: 7.250000E+00 | lm_loss_ppl value: 1.408E+03 | ',
      ' iteration       20/      20 | consumed samples:          640 | learning rate: 3.000E-04 | lm_loss: 6.000000E+00 |',
      ' validation results at iteration 20 | lm_loss value: 6.500000E+00 | lm_loss_ppl value: 6.65E+02 | ',
      ' test results at the end of training for test data | lm_loss value: 8.125000E+00 | lm_loss_ppl value: 3.38E+03 | ',
    ].join('\n'));
    const recs = readNeoxRun(out);
    expect(recs.map((x) => [x.step, x.tokens, x.loss, x.fin_test, x.pile_test, x.lr])).toEqual([
      [10, 10 * m.tokens_per_iteration, 7.5, 7.25, null, 3e-3],
      [20, 20 * m.tokens_per_iteration, 6, 6.5, 8.125, 3e-4],
    ]);
    const p = await plotRuns([out], { x: 'tokens', train: true, out: path.join(t.dir, 'plots') });
    expect(existsSync(p.png)).toBe(true);
  });

  it('exponent floats get a dot in the mantissa, everything else is plain YAML', () => {
    expect(neoxYaml({ a: 1e-8, b: [1e-9, 0.9], c: 2048, d: 'x', e: 2.5e-7 })).toBe('a: 1.0e-8\nb:\n  - 1.0e-9\n  - 0.9\nc: 2048\nd: x\ne: 2.5e-7\n');
  });
});
