/**
 * The losses of a Hugging Face Trainer run that `cpt export --to hf-trainer` prepared, read from
 * the Trainer's `trainer_state.json` (`log_history`: {step, loss, learning_rate, grad_norm} per
 * logged step, {step, eval_fin-test_loss} and {step, eval_pile-test_loss} per evaluation) as the
 * trainer's metrics records, so `cpt plot` draws it next to cpt's own runs. The finished run's
 * DIR/run/trainer_state.json, else the newest checkpoint's while it trains.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HfExportManifest } from '../export/hf-trainer.js';
import type { MetricRecord } from './metrics.js';
import { UserError } from '../util/errors.js';

interface LogEntry { step: number; loss?: number; learning_rate?: number; grad_norm?: number; 'eval_fin-test_loss'?: number; 'eval_pile-test_loss'?: number }

function stateFile(run: string): string | undefined {
  if (existsSync(path.join(run, 'trainer_state.json'))) return path.join(run, 'trainer_state.json');
  const steps = (existsSync(run) ? readdirSync(run) : []).map((d) => /^checkpoint-(\d+)$/.exec(d)).filter((m) => m !== null).map((m) => Number(m[1]));
  const done = steps.sort((a, b) => b - a).map((s) => path.join(run, `checkpoint-${s}`, 'trainer_state.json')).find((f) => existsSync(f));
  return done;
}

export function readHfTrainerRun(dir: string): MetricRecord[] {
  const m = JSON.parse(readFileSync(path.join(dir, 'export.json'), 'utf8')) as HfExportManifest;
  const file = stateFile(path.join(dir, 'run'));
  if (!file) throw new UserError(`${dir}: no trainer_state.json yet (run the Trainer as ${path.join(dir, 'README.md')} says)`);
  const recs = new Map<number, MetricRecord>();
  for (const h of (JSON.parse(readFileSync(file, 'utf8')) as { log_history: LogEntry[] }).log_history) {
    let r = recs.get(h.step);
    if (!r) recs.set(h.step, (r = { step: h.step, tokens: h.step * m.rows_per_step * m.seq_len, lr: null, loss: null, grad_norm: null, fin_test: null, pile_test: null, tok_s: null, time: 0 }));
    if (h.loss !== undefined) Object.assign(r, { loss: h.loss, lr: h.learning_rate ?? null, grad_norm: h.grad_norm ?? null });
    if (h['eval_fin-test_loss'] !== undefined) r.fin_test = h['eval_fin-test_loss'];
    if (h['eval_pile-test_loss'] !== undefined) r.pile_test = h['eval_pile-test_loss'];
  }
  return [...recs.values()].sort((a, b) => a.step - b.step);
}
