// Progress for long work: a redrawn bar with rate and ETA on a TTY, plain lines otherwise.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  label: string;
  /** Where the bar or the lines go (e.g. process.stderr, or an object that forwards the text). */
  stream: ProgressStream;
  /** Unit of the rate, e.g. 'tok/s' uses the `rateCount` passed to update. */
  rateUnit?: string;
  /** Plain mode: print a line every this many updates (default: about 20 lines per run). */
  every?: number;
  /** Plain mode: print a line at most every this many seconds (and at the end) instead of by count. */
  interval?: number;
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly start: number;
  private readonly now: () => number;
  private readonly every: number;
  private done = 0;
  private rateCount = 0;
  private lastLine = '';
  private updates = 0;
  /** Seconds after the start of the last plain line. */
  private lastPrinted = 0;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream;
    this.tty = this.stream.isTTY === true;
    this.now = options.now ?? (() => performance.now() / 1000);
    this.start = this.now();
    this.every = options.every ?? Math.max(1, Math.round(options.total / 20));
  }

  /** Marks `done` units finished; `fields` are shown after the bar (e.g. loss, lr). */
  update(done: number, fields: Record<string, string> = {}, rateCount?: number): void {
    this.done = done;
    if (rateCount !== undefined) this.rateCount = rateCount;
    this.updates += 1;
    const elapsed = this.now() - this.start;
    const fraction = this.options.total > 0 ? Math.min(1, done / this.options.total) : 1;
    const eta = fraction > 0 ? (elapsed / fraction) * (1 - fraction) : NaN;
    const rateValue = elapsed > 0 ? (this.options.rateUnit ? this.rateCount : done) / elapsed : 0;
    const rate = `${rateValue >= 100 ? rateValue.toFixed(0) : rateValue.toFixed(2)} ${this.options.rateUnit ?? 'it/s'}`;
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k} ${v}`)
      .join('  ');
    const head = `${this.options.label} ${done}/${this.options.total}`;
    const tail = `${rate}  elapsed ${formatDuration(elapsed)}  eta ${formatDuration(eta)}${extra ? `  ${extra}` : ''}`;
    if (this.tty) {
      const width = Math.max(10, Math.min(40, (this.stream.columns ?? 100) - head.length - tail.length - 6));
      const filled = Math.round(fraction * width);
      const line = `${head} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${tail}`;
      this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.lastLine.length - line.length))}`);
      this.lastLine = line;
    } else if ((this.options.interval !== undefined ? elapsed - this.lastPrinted >= this.options.interval : this.updates % this.every === 0) || done >= this.options.total) {
      this.lastPrinted = elapsed;
      this.stream.write(`${head} ${tail}\n`);
    }
  }

  /** A message on its own line, without breaking the bar. */
  log(message: string): void {
    if (this.tty && this.lastLine) this.stream.write(`\r${' '.repeat(this.lastLine.length)}\r`);
    this.stream.write(`${message}\n`);
    if (this.tty && this.lastLine) this.stream.write(this.lastLine);
  }

  finish(): void {
    if (this.tty && this.lastLine) this.stream.write('\n');
    this.lastLine = '';
  }
}
