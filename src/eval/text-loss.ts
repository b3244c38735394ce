/**
 * Language-model loss on plain text, as `cpt score` reports it: task-test loss is this over a
 * task's test-split text (the sentences, posts and headlines the financial tasks ask about), the
 * fit to the task distribution that ETS-DACP aims at.
 */
import type { Engine } from '../engine/engine.js';
import { rowsLoss } from '../monitor/heldout.js';
import type { EvalTokenizer } from './loglik.js';

/** Token-weighted mean loss over the texts (each cut to maxTokens), and the tokens scored. */
export function textLoss(engine: Engine, tok: EvalTokenizer, texts: string[], o: { batch: number; maxTokens: number }): { loss: number; tokens: number } {
  return rowsLoss(engine, texts.map((t) => tok.encode(t).subarray(0, o.maxTokens)), tok.eosId, o.batch);
}
