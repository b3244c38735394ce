import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramCount } from '../../src/model/config.js';
import { presetConfig } from '../../src/model/presets.js';
import { corpusTokens, estimate, ENGINE_BENCH } from '../../src/recipe/estimate.js';
import { ENGINES } from '../../src/engine/registry.js';
import { dataDir } from '../../src/util/paths.js';
import { base, load } from './fixture.js';

describe('estimates', () => {
  it('count parameters, memory and time from the model shape', async () => {
    const r = load(base());
    const e = await estimate(r, { kind: 'preset', init: 'pythia-14m', sizeKey: '14m', config: presetConfig('pythia-14m'), configFrom: 'preset', exists: true }, dataDir());
    const c = presetConfig('pythia-14m');
    const n = paramCount(c);
    expect(e.params?.total).toBe(n);
    expect(e.memory!.weights + e.memory!.grads + e.memory!.adam).toBe(16 * n);
    const perToken = c.num_hidden_layers * (17 * c.hidden_size + 2 * c.num_attention_heads * 128) + 2 * c.vocab_size;
    expect(e.memory!.activations).toBe(4 * perToken * 4 * 128);
    expect(e.time!.flopsPerToken).toBe(6 * (n - c.vocab_size * c.hidden_size) + 12 * c.num_hidden_layers * c.hidden_size * 128);
    if (!existsSync(ENGINE_BENCH)) expect(e.time!.gflops).toBe(ENGINES.native.assumedGflops);
    expect(e.time!.secondsTotal).toBeCloseTo((e.time!.flopsPerToken * 40960) / (e.time!.gflops * 1e9), 6);
    // Corpus: the raw sec10k JSON bytes / 4, as nothing is prepared under this recipe's prepared_dir.
    expect(e.corpus.estimated).toBe(true);
    expect(e.corpus.tokens).toBeGreaterThan(1_000_000);
    expect(e.corpus.tokens).toBeLessThan(2_000_000); // 6.4 MB of JSON
    expect(e.train).toMatchObject({ tokens: 40960, steps: 10, microBatchesPerStep: 8, limitedBy: 'train.max_tokens' });
  });
});

describe('corpus tokens', () => {
  it('come from the token cache, else the prepared text bytes, once `cpt prepare` ran', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cpt-prepared-'));
    const r = load(base(`  seed: 1\n`).replace('data:\n', `data:\n  prepared_dir: ${dir}\n`));
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ totals: { text_bytes: 4_000_000 } }));
    expect(await corpusTokens(r)).toMatchObject({ tokens: 1_000_000, estimated: true });
    mkdirSync(path.join(dir, 'tokens', 'abcd'), { recursive: true });
    writeFileSync(path.join(dir, 'tokens', 'abcd', 'index.json'), JSON.stringify({ tokens: 123_456 }));
    expect(await corpusTokens(r)).toMatchObject({ tokens: 123_456, estimated: false });
  });
});
