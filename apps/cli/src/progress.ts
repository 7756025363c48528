// Progress of merge and quantize (trainer's Progress underneath): a bar on a terminal, and
// otherwise a plain line every few seconds with the rate and ETA, not one line per tensor.
import { Progress, type ProgressStream } from '@peft-ts/trainer';

/** Seconds between two plain progress lines when stderr is not a terminal. */
export const PLAIN_INTERVAL_S = 5;

export interface ProgressBarOptions {
  stream?: ProgressStream;
  /** Seconds, for tests; performance.now by default. */
  now?: () => number;
}

/** A progress display whose total is learned from the first report; the rate counts `unit`s. */
export function progressBar(label: string, unit = 'tensors', options: ProgressBarOptions = {}): { update(done: number, total: number, fields?: Record<string, string>): void; finish(): void } {
  const clock = options.now ?? (() => performance.now() / 1000);
  // Time runs from here, not from the first report: the first tensor's work counts in the rate.
  const created = clock();
  let started = false;
  const now = (): number => {
    if (started) return clock();
    started = true;
    return created;
  };
  let bar: Progress | null = null;
  return {
    update(done, total, fields = {}) {
      bar ??= new Progress({ total, label, stream: options.stream ?? process.stderr, rateUnit: `${unit}/s`, interval: PLAIN_INTERVAL_S, now });
      bar.update(done, fields, done);
    },
    finish() {
      bar?.finish();
    },
  };
}

/** A rate as people read it: whole numbers from 100 up, two significant figures below (0.55, 4.2). */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '-';
  if (perSecond === 0) return '0';
  if (perSecond >= 99.5) return perSecond.toFixed(0);
  return perSecond.toPrecision(2);
}
