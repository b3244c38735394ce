/**
 * Inputs a stage needs on disk. `loadRecipe` does not require them (so `cpt inspect` works before a
 * model is downloaded); each stage asks for what it uses: prepare → corpus, pile_test, tokenizer;
 * select → proxy / embedder; train → model.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { whereIn } from './load.js';
import { formatPath } from './problems.js';
import type { Recipe } from './types.js';

export type Input = 'model' | 'proxy' | 'embedder' | 'corpus' | 'pile_test' | 'tokenizer';

/** One `file:line key: problem` line per missing input. */
export function checkInputs(r: Recipe, needs: readonly Input[]): string[] {
  const out: string[] = [];
  const miss = (key: (string | number)[], msg: string) => out.push(`${whereIn(r, key)} ${formatPath(key)}: ${msg}`);
  const modelDir = (key: (string | number)[], p: string | undefined) => {
    if (p === undefined || !path.isAbsolute(p)) return; // a preset: nothing on disk
    if (!existsSync(p)) miss(key, `${p} not found (expected a Hugging Face GPT-NeoX model directory with config.json and weights)`);
    else if (!existsSync(path.join(p, 'config.json'))) miss(key, `${p} has no config.json`);
  };
  if (needs.includes('model')) modelDir(['model', 'init'], r.model.init);
  if (needs.includes('proxy')) modelDir(['selection', 'proxy_model'], r.selection.proxy_model);
  if (needs.includes('embedder') && r.selection.embedder.model && !existsSync(r.selection.embedder.model)) {
    miss(['selection', 'embedder', 'model'], `${r.selection.embedder.model} not found`);
  }
  for (const list of ['corpus', 'pile_test'] as const) {
    if (!needs.includes(list)) continue;
    r.data[list].forEach((s, i) => {
      if (!existsSync(s.path)) miss(['data', list, i, 'path'], `${s.path} not found`);
    });
  }
  if (needs.includes('tokenizer')) {
    const t = r.data.tokenizer;
    if (!existsSync(t) || !statSync(t).isFile()) miss(['data', 'tokenizer'], `${t} not found (expected a Hugging Face tokenizer.json)`);
  }
  return out;
}

/** Throw one UserError listing every missing input. */
export function requireInputs(r: Recipe, needs: readonly Input[]): void {
  const missing = checkInputs(r, needs);
  if (missing.length === 1) throw new UserError(missing[0]);
  if (missing.length) throw new UserError(`${missing.length} inputs missing:\n${missing.map((m) => `  ${m}`).join('\n')}`);
}
