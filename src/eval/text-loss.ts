/**
 * Language-model loss on plain text: each text its own row, the mean next-token cross-entropy
 * of its tokens, as `cpt score` reports it. Task-test loss is this over a task's test-split text
 * (the sentences, posts and headlines the financial tasks ask about): the fit to the task
 * distribution that ETS-DACP aims at.
 */
import type { Engine } from '../engine/engine.js';
import { loadTask } from '../data/tasks/index.js';
import type { TaskConfig } from './config.js';
import type { EvalTokenizer } from './loglik.js';

/**
 * Mean next-token loss of each row, batched: rows are right-padded with `padId`, which causal
 * attention makes invisible to the real positions, and only each row's own predictions count.
 */
export function rowLosses(engine: Engine, rows: Int32Array[], padId: number): (number | null)[] {
  const out: (number | null)[] = rows.map(() => null);
  const live = rows.map((r, i) => i).filter((i) => rows[i].length >= 2);
  if (!live.length) return out;
  const seq = Math.max(...live.map((i) => rows[i].length));
  const ids = new Int32Array(live.length * seq).fill(padId);
  live.forEach((i, b) => ids.set(rows[i], b * seq));
  const lp = engine.tokenLogprobs(ids, live.length, seq);
  live.forEach((i, b) => {
    let s = 0;
    const n = rows[i].length - 1;
    for (let t = 0; t < n; t++) s += lp[b * (seq - 1) + t];
    out[i] = -s / n;
  });
  return out;
}

/** Tasks whose test split is text a domain model should fit (the financial ones). */
export const TASK_LOSS_TASKS = ['fpb', 'fiqa_sa', 'headline', 'ner'] as const;

/** The test-split text of a financial task, each distinct text once, in file order. */
export async function taskTestTexts(cfg: TaskConfig, dataDir: string): Promise<string[]> {
  const data = await loadTask(cfg.dataset.loader, dataDir);
  const field = cfg.dataset.loader === 'ner' ? 'sentence' : 'text';
  const seen = new Set<string>();
  for (const d of data.splits.test ?? []) {
    const t = d.fields[field];
    if (t) seen.add(t);
  }
  return [...seen];
}

/** Token-weighted mean loss over the texts (each cut to maxTokens), and the tokens scored. */
export function textLoss(engine: Engine, tok: EvalTokenizer, texts: string[], o: { batch: number; maxTokens: number }): { loss: number; tokens: number } {
  let sum = 0, n = 0;
  for (let b0 = 0; b0 < texts.length; b0 += o.batch) {
    const rows = texts.slice(b0, b0 + o.batch).map((t) => tok.encode(t).subarray(0, o.maxTokens));
    rowLosses(engine, rows, tok.eosId).forEach((l, i) => {
      if (l === null) return;
      sum += l * (rows[i]!.length - 1);
      n += rows[i]!.length - 1;
    });
  }
  return { loss: n ? sum / n : NaN, tokens: n };
}
