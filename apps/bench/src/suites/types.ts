// The record every benchmark suite returns, and what a suite is given.

export interface BenchResult {
  suite: string;
  name: string;
  /** The median for timed results. */
  value: number;
  unit: string;
  /** Which direction is an improvement; results without one are informational and never gate. */
  better?: 'higher' | 'lower';
  /** Timed repetitions behind `value`, with their extremes in the same unit. */
  iterations?: number;
  min?: number;
  max?: number;
  detail?: string;
}

export interface SuiteOptions {
  quick: boolean;
  /** Case filter (`--case`), comma-separated names or name prefixes. */
  cases?: string;
  log?: (line: string) => void;
  /** Hands over results as soon as a case has them (the harness saves them at once). */
  emit?: (results: BenchResult[]) => void;
}

/** Median, min and max of a non-empty sample. */
export function stats(sample: readonly number[]): { median: number; min: number; max: number } {
  const sorted = [...sample].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN };
}

export interface Timing {
  /** Milliseconds per run: median, min and max over the samples. */
  median: number;
  min: number;
  max: number;
  samples: number;
  /** Runs per sample, chosen so that a sample holds at least `minSampleMs` of work. */
  repeats: number;
}

/**
 * Times `run` (which records GPU work) as throughput: after warm-up, one synced run sizes the
 * samples so each holds at least `minSampleMs` of device work, then `samples` samples are taken,
 * each ending in a full sync.
 */
export async function timeSamples(rt: { sync(): Promise<void> }, run: () => void, o: { samples: number; minSampleMs: number; warmup?: number }): Promise<Timing> {
  const once = async (n: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) run();
    await rt.sync();
    return performance.now() - t0;
  };
  for (let i = 0; i < (o.warmup ?? 1); i++) await once(1);
  const single = await once(1);
  const repeats = Math.max(1, Math.min(1000, Math.ceil(o.minSampleMs / Math.max(single, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < o.samples; i++) times.push((await once(repeats)) / repeats);
  return { ...stats(times), samples: times.length, repeats };
}
