import path from 'node:path';
import { appendFileSync, existsSync, fsyncSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { TensorBoardLog } from './tensorboard.js';
import { spaceError, writeFileAtomicSync } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

/**
 * One line of `<run_dir>/metrics.jsonl`. Every optimizer step writes one record (train loss, lr,
 * grad norm, throughput); monitor steps (step 0, every `monitor.every`, the end) add the held-out
 * losses. Step 0 is the model before any update (loss, lr and grad_norm are null there).
 */
export interface MetricRecord {
  step: number;
  tokens: number;
  lr: number | null;
  loss: number | null;
  grad_norm: number | null;
  fin_test: number | null;
  pile_test: number | null;
  /** Task-test loss (monitor.task_test_tokens); absent in runs that do not measure it. */
  task_test?: number | null;
  tok_s: number | null;
  /** Wall-clock seconds since the run began (summed across resumes). */
  time: number;
}

/**
 * Append-only metrics log: one JSON object per line, fsynced so a kill loses at most a partial line.
 * With `tensorboard`, the same scalars also go to a TensorBoard event file in that directory.
 */
export class MetricsLog {
  private readonly tb?: TensorBoardLog;

  constructor(readonly file: string, o: { tensorboard?: string } = {}) {
    if (o.tensorboard) this.tb = new TensorBoardLog(o.tensorboard);
  }

  append(r: MetricRecord): void {
    this.tb?.append(r);
    const line = JSON.stringify(r) + '\n';
    try {
      appendFileSync(this.file, line);
    } catch (e) {
      throw spaceError(e, this.file, Buffer.byteLength(line), path.dirname(this.file));
    }
    const fd = openSync(this.file, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  text(): string {
    return existsSync(this.file) ? readFileSync(this.file, 'utf8') : '';
  }

  /**
   * Resume: keep records up to `step` (inclusive) and drop later ones and a partial last line, so
   * the resumed run neither duplicates nor loses steps.
   */
  truncateTo(step: number): number {
    const kept = parseMetrics(this.text(), this.file, { tolerateTail: true }).filter((r) => r.step <= step);
    writeFileAtomicSync(this.file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    this.tb?.rewrite(kept);
    return kept.length;
  }

  /** A fresh run: no records (a run that never reached its first checkpoint leaves none behind). */
  reset(): void {
    rmSync(this.file, { force: true });
    this.tb?.rewrite([]);
  }
}

/** Parse a metrics log; a bad line is a UserError naming the file and line. */
export function parseMetrics(text: string, file: string, opts: { tolerateTail?: boolean } = {}): MetricRecord[] {
  const lines = text.split('\n');
  const out: MetricRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const last = i >= lines.length - 2 && !text.endsWith('\n') ? true : false;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      if (opts.tolerateTail && last) break; // a write cut short by a kill
      throw new UserError(`${file}:${i + 1}: not a JSON object (a metrics line was expected)`);
    }
    if (!r || typeof r !== 'object' || typeof (r as MetricRecord).step !== 'number' || typeof (r as MetricRecord).tokens !== 'number') {
      throw new UserError(`${file}:${i + 1}: a metrics record needs numeric "step" and "tokens"`);
    }
    out.push(r as MetricRecord);
  }
  return out;
}

export function readMetrics(file: string): MetricRecord[] {
  if (!existsSync(file)) throw new UserError(`${file}: no such metrics file (is this a run directory?)`);
  return parseMetrics(readFileSync(file, 'utf8'), file, { tolerateTail: true });
}
