/** Progress for long work: count, rate and ETA on one line, redrawn at most every `intervalMs`. */
export class Progress {
  private readonly t0 = Date.now();
  private last = 0;
  private done = 0;
  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly unit = 'items',
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = 1000,
  ) {}

  add(n = 1, extra = ''): void {
    this.done += n;
    const now = Date.now();
    if (now - this.last >= this.intervalMs) {
      this.last = now;
      this.draw(extra);
    }
  }

  finish(extra = ''): void {
    this.draw(extra);
    if (this.out.isTTY) this.out.write('\n');
  }

  line(extra = ''): string {
    const s = (Date.now() - this.t0) / 1000;
    const rate = s >= 0.2 ? this.done / s : NaN; // no rate from a few milliseconds
    const count = this.total ? `${this.done}/${this.total}` : `${this.done}`;
    const eta = this.total && rate > 0 && isFinite(rate) ? ` eta ${fmtDuration((this.total - this.done) / rate)}` : '';
    return `${this.label} ${count} ${this.unit} | ${fmtRate(rate)} ${this.unit}/s | ${fmtDuration(s)}${eta}${extra ? ' | ' + extra : ''}`;
  }

  private draw(extra: string): void {
    const l = this.line(extra);
    if (this.out.isTTY) this.out.write(`\r${l}\x1b[K`);
    else this.out.write(l + '\n');
  }
}

export function fmtRate(r: number): string {
  if (!isFinite(r)) return '-';
  if (r >= 1e6) return (r / 1e6).toFixed(2) + 'M';
  if (r >= 1e3) return (r / 1e3).toFixed(1) + 'k';
  return r.toFixed(1);
}

export function fmtDuration(s: number): string {
  if (!isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
