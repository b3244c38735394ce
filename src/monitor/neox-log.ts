/**
 * The losses of a GPT-NeoX run that `cpt export --to neox` prepared, read from its log (the
 * export's README tees it to DIR/train.log), as the trainer's metrics records, so `cpt plot`
 * draws it next to cpt's own runs. GPT-NeoX prints (megatron/logging.py, megatron/training.py):
 *   " iteration      100/    1000 | ... | learning rate: 1.000E-04 | ... | lm_loss: 2.345678E+00 | ..."
 *   " validation results at iteration 100 | lm_loss value: 2.3E+00 | lm_loss_ppl value: ..."
 *   " test results at the end of training for test data | lm_loss value: 2.4E+00 | ..."
 * Validation is Fin-test and test is Pile-test (how the export wires them); tokens are
 * iterations × the export's tokens per iteration.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ExportManifest } from '../export/neox.js';
import type { MetricRecord } from './metrics.js';
import { UserError } from '../util/errors.js';

export const NEOX_LOG = 'train.log';

export function readNeoxRun(dir: string): MetricRecord[] {
  const m = JSON.parse(readFileSync(path.join(dir, 'export.json'), 'utf8')) as ExportManifest;
  const log = path.join(dir, NEOX_LOG);
  if (!existsSync(log)) throw new UserError(`${dir}: no ${NEOX_LOG} yet (run GPT-NeoX as ${path.join(dir, 'README.md')} says, teeing its output there)`);
  const recs = new Map<number, MetricRecord>();
  const at = (step: number): MetricRecord => {
    let r = recs.get(step);
    if (!r) recs.set(step, (r = { step, tokens: step * m.tokens_per_iteration, lr: null, loss: null, grad_norm: null, fin_test: null, pile_test: null, tok_s: null, time: 0 }));
    return r;
  };
  const num = /([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)/.source;
  let last = 0;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    let g = new RegExp(`\\biteration\\s+(\\d+)\\s*/\\s*\\d+\\s*\\|.*?\\blm_loss: ${num}`).exec(line);
    if (g) {
      const r = at((last = Number(g[1])));
      r.loss = Number(g[2]);
      const lr = new RegExp(`learning rate: ${num}`).exec(line);
      if (lr) r.lr = Number(lr[1]);
      continue;
    }
    g = new RegExp(`validation results at iteration (\\d+) \\|.*?\\blm_loss value: ${num}`).exec(line);
    if (g) {
      last = Math.max(last, Number(g[1]));
      at(Number(g[1])).fin_test = Number(g[2]);
      continue;
    }
    g = new RegExp(`test results at .*?\\|.*?\\blm_loss value: ${num}`).exec(line);
    if (g) at(last).pile_test = Number(g[1]);
  }
  return [...recs.values()].sort((a, b) => a.step - b.step);
}
