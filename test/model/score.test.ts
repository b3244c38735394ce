import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { runScore, type ScoreRecord } from '../../src/cli/score.js';
import { saveModel } from '../../src/model/load.js';
import { initWeights } from '../../src/model/init.js';
import { presetConfig } from '../../src/model/presets.js';
import { createTfjsEngine } from '../../src/engine/tfjs/index.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { dataDir, ROOT } from '../../src/util/paths.js';
import { UserError } from '../../src/util/errors.js';
import { loadGolden, goldenDir } from '../helpers/golden.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'cpt-score-'));
const readJsonl = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ScoreRecord);
const KIT_TOKENIZER = path.join(dataDir(), 'tokenizer', '20B_tokenizer.json');

describe('cpt score', () => {
  let idsFile: string;
  beforeAll(() => {
    const g = loadGolden();
    const rows = [0, 1].map((b) => Array.from(g.ids.subarray(b * g.seq, (b + 1) * g.seq)));
    idsFile = path.join(tmp(), 'ids.jsonl');
    // Lines carry an id (any JSON string or number) except the last.
    writeFileSync(idsFile, [[rows[0], 'a'], [[5], 7], '', [rows[1], 'c'], [rows[0].slice(0, 7)]].map((r) => (r === '' ? '' : JSON.stringify({ ...(r[1] !== undefined ? { id: r[1] } : {}), ids: r[0] }))).join('\n') + '\n');
  });

  it('--ids on the golden model: per-line losses reproduce the PyTorch loss; batching and padding do not change them', async () => {
    const g = loadGolden();
    const out = path.join(tmp(), 'a.jsonl'), out1 = path.join(tmp(), 'b.jsonl');
    const r = await runScore({ model: goldenDir(), ids: idsFile, engine: 'tfjs', batch: 3, out });
    await runScore({ model: goldenDir(), ids: idsFile, engine: 'tfjs', batch: 1, out: out1 });
    const recs = readJsonl(out), single = readJsonl(out1);
    expect(recs.map((x) => [x.line, x.tokens])).toEqual([[1, 16], [2, 1], [4, 16], [5, 7]]); // blank line 3 skipped
    // Each record names its input (id) and the weight of its loss (predictions = tokens - 1).
    expect(recs.map((x) => [x.id, x.predictions])).toEqual([['a', 15], [7, 0], ['c', 15], [undefined, 6]]);
    expect(recs[1]).toMatchObject({ loss: null, ppl: null });
    // Both rows have 15 predictions, so the golden batch loss is the mean of the two line losses.
    expect(Math.abs((recs[0].loss! + recs[2].loss!) / 2 - g.loss)).toBeLessThan(1e-5);
    expect(recs[0].ppl).toBeCloseTo(Math.exp(recs[0].loss!), 6);
    for (let i = 0; i < recs.length; i++) if (recs[i].loss !== null) expect(Math.abs(recs[i].loss! - single[i].loss!)).toBeLessThan(1e-5);
    expect(r).toMatchObject({ lines: 4, tokens: 40 });
  });

  it('--text tokenizes with the model directory\'s tokenizer and scores what the engine scores; --max-tokens truncates', async () => {
    const cfg = { ...presetConfig('pythia-14m'), hidden_size: 16, num_attention_heads: 2, intermediate_size: 32, num_hidden_layers: 1 };
    const dir = tmp();
    const w = initWeights(cfg, 5);
    await saveModel(dir, cfg, w, { tokenizer: KIT_TOKENIZER });
    const texts = ['Net interest income rose 4% year over year.', 'Shares fell after the guidance cut.'];
    const input = path.join(tmp(), 't.jsonl');
    writeFileSync(input, texts.map((t) => JSON.stringify({ body: t })).join('\n'));
    const out = path.join(tmp(), 'o.jsonl');
    await runScore({ model: dir, text: input, field: 'body', engine: 'tfjs', out, maxTokens: 6 });
    const recs = readJsonl(out);
    const tok = await loadTokenizer(KIT_TOKENIZER, { threads: 0 });
    const e = await createTfjsEngine(cfg, {});
    e.loadWeights(w);
    texts.forEach((t, i) => {
      const ids = tok.encode(t);
      expect(ids.length).toBeGreaterThan(6);
      expect(recs[i]).toMatchObject({ line: i + 1, tokens: 6, truncated: true });
      expect(recs[i].loss).toBeCloseTo(e.evalLoss(ids.subarray(0, 6), 1, 6), 5);
    });
    e.dispose();
  });

  it('bad input is a UserError naming the file and line', async () => {
    const bad = path.join(tmp(), 'bad.jsonl');
    writeFileSync(bad, '{"ids":[1,2]}\n{"ids":[1, 2000]}\n');
    await expect(runScore({ model: goldenDir(), ids: bad, engine: 'tfjs' })).rejects.toThrow(/bad\.jsonl:2: ids\[1\] = 2000 is outside the model's vocabulary \[0, 1024\)/);
    writeFileSync(bad, '{"ids":[1,2]}\nnot json\n');
    await expect(runScore({ model: goldenDir(), ids: bad, engine: 'tfjs' })).rejects.toThrow(/bad\.jsonl:2: not valid JSON/);
    writeFileSync(bad, '{"content":"x"}\n');
    await expect(runScore({ model: goldenDir(), text: bad, tokenizer: KIT_TOKENIZER, engine: 'tfjs' })).rejects.toThrow(/tokens but the model's vocab_size is 1024/);
    await expect(runScore({ model: goldenDir(), engine: 'tfjs' })).rejects.toThrow(UserError);
    await expect(runScore({ model: goldenDir(), ids: bad, maxTokens: 65, engine: 'tfjs' })).rejects.toThrow(/exceeds the model's context/);
  });

  it('the CLI writes JSONL to stdout', () => {
    const cli = path.join(ROOT, 'src/cli/main.ts');
    const tsx = path.join(ROOT, 'node_modules/.bin/tsx');
    const out = execFileSync(tsx, [cli, 'score', '--model', goldenDir(), '--ids', idsFile, '--engine', 'tfjs', '--batch', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trim().split('\n').map((l) => JSON.parse(l).line)).toEqual([1, 2, 4, 5]);
  }, 60_000);
});
