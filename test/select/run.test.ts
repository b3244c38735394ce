/**
 * End to end on a slice of the real kit (two Reuters SGML files, ~2000 docs): scoring, resumable
 * scoring, sampling per method, held-out exclusion, output readable as a corpus, report.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyRecipe, type TinyRecipe } from '../helpers/tiny-recipe.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { runSelection } from '../../src/select/index.js';
import { readScores } from '../../src/select/score-file.js';
import { isHeldOut, readDocs } from '../../src/data/index.js';
import type { Recipe } from '../../src/recipe/types.js';
import { nativeStatus } from '../../src/engine/native/index.js';

const FILES = 'reut2-00[0-1].sgm';
let base: TinyRecipe;
const dirs: string[] = [];

async function recipe(name: string, method: Recipe['method'], selection: Record<string, unknown>, files = FILES, engine?: Record<string, unknown>): Promise<Recipe> {
  const t = await writeTinyRecipe({
    name,
    method,
    dir: base.dir,
    reutersFiles: files,
    overrides: { selection: { seed: 7, ...selection }, data: { shard_mb: 0.5, prepared_dir: path.join(base.dir, files === FILES ? 'prepared' : 'prepared-small') }, ...(engine ? { engine } : {}) },
  });
  return loadRecipe(t.file);
}

/** The chosen ids, in selection order (ids.txt). */
function selectedIds(res: { ids: string }): string[] {
  return readFileSync(res.ids, 'utf8').split('\n').filter(Boolean);
}

beforeAll(async () => {
  base = await writeTinyRecipe({ name: 'base', reutersFiles: FILES });
  dirs.push(base.dir);
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('runSelection on Reuters', { timeout: 180_000 }, () => {
  it('ETS-DACP hard: meets the budget, excludes Fin-test, is reproducible, reuses scores', async () => {
    const r = await recipe('ets', 'ets-dacp', { budget: 0.1, sampling: 'hard' });
    const res = await runSelection(r);
    const sel = res.record.selection;
    expect(sel.selected_tokens).toBeGreaterThanOrEqual(sel.budget_tokens);
    expect(path.dirname(path.dirname(res.scores!))).toBe(path.join(r.data.prepared_dir, 'scores'));
    const scores = await readScores(res.scores!);
    expect(scores.ids.length).toBeGreaterThan(1500);
    expect(scores.scores.similarity.every(Number.isFinite) || scores.scores.similarity.filter(Number.isFinite).length > 1500).toBe(true);
    expect(Object.keys(scores.scores)).toEqual(['similarity']); // the table holds only its metric
    const byId = new Map(scores.ids.map((id, i) => [id, i]));
    const ids = selectedIds(res);
    expect(ids.length).toBe(sel.selected_docs);
    // within one document of the budget
    let minSel = Infinity;
    const lastTokens = Math.max(...ids.map((id) => scores.tokens[byId.get(id)!]));
    expect(sel.selected_tokens - lastTokens).toBeLessThan(sel.budget_tokens);
    for (const id of ids) {
      expect(isHeldOut(id, r.data.fin_test_fraction)).toBe(false);
      minSel = Math.min(minSel, scores.scores.similarity[byId.get(id)!]);
    }
    // hard: nothing left out scores above the cut
    const kept = new Set(ids);
    for (let i = 0; i < scores.ids.length; i++) if (!kept.has(scores.ids[i])) expect(scores.scores.similarity[i] > minSel).toBe(false);
    // the corpus does contain held-out documents, and none were scored
    let held = 0;
    for await (const b of readDocs(r.data.prepared_dir)) for (const d of b) if (isHeldOut(d.id, r.data.fin_test_fraction)) { held++; expect(byId.has(d.id)).toBe(false); }
    expect(held).toBeGreaterThan(0);
    // report
    const report = readFileSync(path.join(r.run_dir, 'selection', 'report.md'), 'utf8');
    expect(report).toContain('| reuters |');
    expect(existsSync(path.join(r.run_dir, 'selection', 'hist-similarity.svg'))).toBe(true);
    expect(existsSync(path.join(r.run_dir, 'selection', 'hist-similarity.png'))).toBe(true);
    // same recipe again: up to date; --force: same ids
    expect((await runSelection(r)).reused).toBe(true);
    const again = await runSelection(r, { force: true });
    expect(again.reused).toBe(false);
    expect(selectedIds(again)).toEqual(ids);
  });

  it('ETA-DACP entropy soft: same seed → same ids, other seed → different ids, Jaccard in report', async () => {
    const a = await recipe('eta-a', 'eta-dacp', { metric: 'entropy', sampling: 'soft', budget: 0.2, seed: 3 });
    const ra = await runSelection(a);
    const ids = selectedIds(ra);
    expect(ra.record.selection.selected_tokens).toBeGreaterThanOrEqual(ra.record.selection.budget_tokens);
    const again = await runSelection(a, { force: true });
    expect(selectedIds(again)).toEqual(ids);
    // A sibling run over another corpus: its ids share nothing with these, so no overlap is reported.
    await runSelection(await recipe('eta-elsewhere', 'eta-dacp', { metric: 'entropy', sampling: 'soft', budget: 0.2, seed: 3 }, 'reut2-002.sgm'));
    const b = await recipe('eta-b', 'eta-dacp', { metric: 'entropy', sampling: 'soft', budget: 0.2, seed: 4 });
    const rb = await runSelection(b);
    const idsB = selectedIds(rb);
    expect(idsB).not.toEqual(ids);
    const report = readFileSync(path.join(b.run_dir, 'selection', 'report.md'), 'utf8');
    expect(report).toMatch(/Overlap with other selections/);
    expect(report).toMatch(/\| eta-a \| eta-dacp \(soft\)/);
    expect(report).not.toMatch(/eta-elsewhere/);
  });

  it('interrupted scoring resumes from the last completed shard and equals an uninterrupted run', async () => {
    const r = await recipe('resume', 'eta-dacp', { metric: 'entropy', sampling: 'hard', budget: 0.1 });
    const full = await recipe('noresume', 'eta-dacp', { metric: 'entropy', sampling: 'hard', budget: 0.1 });
    // rescore: scores of these settings may already be cached beside the corpus by an earlier test.
    await expect(
      runSelection(r, {
        rescore: true,
        onShardDone: (i) => {
          if (i === 0) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const scoreDirs = readdirSync(path.join(r.data.prepared_dir, 'scores')).filter((d) => d.startsWith('entropy-'));
    expect(scoreDirs.length).toBe(1);
    expect(existsSync(path.join(r.data.prepared_dir, 'scores', scoreDirs[0], 'scores.arrow'))).toBe(false);
    let skipped = -1;
    const scored: number[] = [];
    const res = await runSelection(r, {
      onProgress: (p) => {
        if (p.score) skipped = p.score.skippedShards;
      },
      onShardDone: (i) => scored.push(i),
    });
    expect(skipped).toBe(1);
    const shards = scored.length;
    expect(shards).toBeGreaterThan(1);
    const s1 = await readScores(res.scores!);
    const ref = await runSelection(full, { rescore: true }); // every shard scored in one go
    const s2 = await readScores(ref.scores!);
    expect(s1.ids).toEqual(s2.ids);
    expect(Array.from(s1.scores.entropy)).toEqual(Array.from(s2.scores.entropy));
    expect(Array.from(s1.tokens)).toEqual(Array.from(s2.tokens));
    expect(selectedIds(res)).toEqual(selectedIds(ref));
  });

  it('a damaged score part (B22) or merged table is found by its checksum, named, scored again, and the selection equals an undamaged one', async () => {
    const r = await recipe('damaged', 'eta-dacp', { metric: 'entropy', sampling: 'hard', budget: 0.1 });
    const ref = await recipe('undamaged', 'eta-dacp', { metric: 'entropy', sampling: 'hard', budget: 0.1 });
    await expect(runSelection(r, { rescore: true, onShardDone: (i) => { if (i === 1) throw new Error('simulated crash'); } })).rejects.toThrow('simulated crash');
    const table = readdirSync(path.join(r.data.prepared_dir, 'scores')).find((d) => d.startsWith('entropy-'))!;
    const parts = path.join(r.data.prepared_dir, 'scores', table, 'parts');
    const part = path.join(parts, readdirSync(parts)[0], 'shard-00000.arrow');
    const flip = (file: string) => {
      const b = readFileSync(file);
      b[Math.floor(b.length / 2)] ^= 0x40; // a byte of the scores, as in the fault sweep
      writeFileSync(file, b);
    };
    flip(part);
    const notices: string[] = [];
    let skipped = -1;
    const res = await runSelection(r, { onProgress: (p) => { if (p.message) notices.push(p.message); if (p.score) skipped = p.score.skippedShards; } });
    expect(notices).toContain(`${part} fails its sha256 check (damaged); scoring it again`);
    expect(skipped).toBe(1); // shard 1 was intact and kept; shard 0 rescored
    const want = await runSelection(ref, { rescore: true });
    expect(selectedIds(res)).toEqual(selectedIds(want));
    // The merged table: damaged after the run, found by the next one.
    flip(res.scores!);
    const again: string[] = [];
    const res2 = await runSelection(r, { onProgress: (p) => { if (p.message) again.push(p.message); } });
    expect(again).toContain(`${res.scores} fails its sha256 check (damaged); scoring it again`);
    expect(selectedIds(res2)).toEqual(selectedIds(want));
    const a = await readScores(res2.scores!), b = await readScores(want.scores!);
    expect(Array.from(a.scores.entropy)).toEqual(Array.from(b.scores.entropy));
    // A truncated merged table (B21): named in one line, no JS internals, rebuilt, same selection.
    writeFileSync(res2.scores!, readFileSync(res2.scores!).subarray(0, 100));
    const cut: string[] = [];
    const res3 = await runSelection(r, { onProgress: (p) => { if (p.message) cut.push(p.message); } });
    expect(cut).toContain(`${res2.scores} fails its sha256 check (damaged); scoring it again`);
    expect(selectedIds(res3)).toEqual(selectedIds(want));
  });

  it('a hand-edited ids.txt (B86/87) is not used: named, and the selection is made again', async () => {
    const r = await recipe('edited', 'ets-dacp', { sampling: 'hard', budget: 0.1 });
    const first = await runSelection(r);
    const want = selectedIds(first);
    writeFileSync(first.ids, want.slice(1).join('\n') + '\n'); // one document dropped by hand
    const notices: string[] = [];
    const again = await runSelection(r, { onProgress: (p) => { if (p.message) notices.push(p.message); } });
    expect(notices).toContain(`${first.ids} was changed after it was written (sha256); selecting again`);
    expect(again.reused).toBe(false);
    expect(selectedIds(again)).toEqual(want);
    expect((await runSelection(r)).reused).toBe(true);
  });

  it('DACP takes the whole non-held-out corpus; TACP takes the task train text', async () => {
    const d = await recipe('dacp', 'dacp', { budget: 1 });
    const rd = await runSelection(d);
    const scores = await readScores(rd.scores!);
    expect(rd.record.selection.selected_docs).toBe(scores.ids.length);
    expect((selectedIds(rd)).some((id) => isHeldOut(id, d.data.fin_test_fraction))).toBe(false);
    const t = await recipe('tacp', 'tacp', { budget: 1 });
    const rt = await runSelection(t);
    const ids = selectedIds(rt);
    expect(ids.length).toBeGreaterThan(1000); // FPB train sentences
    expect(ids.every((id) => id.startsWith('fpb:train:'))).toBe(true);
  });

  it('ETS-DACP-com hard: all three metrics scored (perplexity on the tiny model via tfjs), ranked by mean rank', async () => {
    // One Reuters file, 8 tokens per document: the tfjs forward over the 50k vocabulary dominates.
    const r = await recipe('com', 'ets-dacp-com', { budget: 0.1, sampling: 'hard', perplexity_tokens: 8 }, 'reut2-021.sgm');
    const res = await runSelection(r);
    const s = await readScores(res.scores!);
    for (const m of ['similarity', 'perplexity', 'entropy'] as const) expect(s.scores[m].filter(Number.isFinite).length).toBeGreaterThan(s.ids.length * 0.9);
    expect(s.scores.perplexity.filter(Number.isFinite).every((p) => p > 1)).toBe(true);
    const { percentileRanks, meanColumns } = await import('../../src/select/sample.js');
    const mean = meanColumns([percentileRanks(s.scores.similarity), percentileRanks(s.scores.perplexity), percentileRanks(s.scores.entropy)]);
    const ids = new Set(selectedIds(res));
    let minIn = Infinity, maxOut = -Infinity;
    s.ids.forEach((id, i) => (ids.has(id) ? (minIn = Math.min(minIn, mean[i])) : (maxOut = Math.max(maxOut, mean[i]))));
    expect(minIn).toBeGreaterThanOrEqual(maxOut);
    expect(res.record.selection.selected_tokens).toBeGreaterThanOrEqual(res.record.selection.budget_tokens);
    // Each metric was scored into its own table, so ETA-DACP (perplexity) with the same settings scores nothing.
    const eta = await recipe('com-ppl', 'eta-dacp', { metric: 'perplexity', budget: 0.1, sampling: 'hard', perplexity_tokens: 8 }, 'reut2-021.sgm');
    const phases = new Set<string>();
    const re = await runSelection(eta, { onProgress: (p) => phases.add(p.phase) });
    expect(phases.has('score')).toBe(false);
    expect(Array.from((await readScores(re.scores!)).scores.perplexity)).toEqual(Array.from(s.scores.perplexity));
  });

  it('ETS-DACP with the model embedder (mean-pooled hidden states of the tiny model; native engine if built)', async () => {
    const r = await recipe('ets-model', 'ets-dacp', { budget: 0.1, sampling: 'hard', embedder: { kind: 'model', max_tokens: 16, model: path.join(base.dir, 'tiny-neox') } }, 'reut2-021.sgm', { kind: nativeStatus().ok ? 'native' : 'tfjs', threads: 2 });
    const res = await runSelection(r);
    const s = await readScores(res.scores!);
    const sims = s.scores.similarity.filter(Number.isFinite);
    expect(sims.length).toBe(s.ids.length);
    for (const x of sims) expect(Math.abs(x)).toBeLessThanOrEqual(1 + 1e-6);
    expect(new Set(sims).size).toBeGreaterThan(s.ids.length / 2); // documents get distinct scores
    expect(res.record.selection.selected_tokens).toBeGreaterThanOrEqual(res.record.selection.budget_tokens);
  });
});
