// Side-by-side comparison of two benchmark runs from the same adapter, as ratios.
import type { DeviceInfo } from '@peft-ts/tensor';
import type { BenchResult } from './suites/types.js';

/** What bench.json holds. */
export interface BenchRun {
  schemaVersion: number;
  date: string;
  commit: string | null;
  node: string;
  webgpu: string | null;
  device: DeviceInfo;
  quick: boolean;
  results: BenchResult[];
}

export interface ComparedResult {
  key: string;
  unit: string;
  baseline: number;
  current: number;
  /** How many times slower (or bigger) than the baseline: > 1 is worse, < 1 is better. */
  slowdown: number;
  regression: boolean;
}

export interface Comparison {
  /** Set when the runs cannot be compared (another adapter). */
  error: string | null;
  rows: ComparedResult[];
  regressions: number;
  /** Results with a direction that the baseline lacks. */
  unmatched: string[];
}

const keyOf = (r: BenchResult): string => `${r.suite}: ${r.name}`;

/**
 * Pairs results by suite and name. Only results with a direction (`better`) are compared; a
 * result is a regression when it is worse than the baseline by more than `maxRegression`.
 */
export function compareRuns(baseline: BenchRun, current: BenchRun, maxRegression: number): Comparison {
  const a = baseline.device.description;
  const b = current.device.description;
  if (a !== b) {
    return { error: `the baseline was measured on "${a}", this run on "${b}": results from different adapters are not compared`, rows: [], regressions: 0, unmatched: [] };
  }
  const base = new Map(baseline.results.map((r) => [keyOf(r), r]));
  const rows: ComparedResult[] = [];
  const unmatched: string[] = [];
  for (const r of current.results) {
    if (!r.better) continue;
    const old = base.get(keyOf(r));
    if (old?.unit !== r.unit || !(old.value > 0) || !(r.value > 0)) {
      unmatched.push(keyOf(r));
      continue;
    }
    const slowdown = r.better === 'higher' ? old.value / r.value : r.value / old.value;
    rows.push({ key: keyOf(r), unit: r.unit, baseline: old.value, current: r.value, slowdown, regression: slowdown > 1 + maxRegression });
  }
  return { error: null, rows, regressions: rows.filter((r) => r.regression).length, unmatched };
}

export function formatComparison(c: Comparison, maxRegression: number): string {
  if (c.error) return `compare: ${c.error}`;
  const fmt = (v: number): string => (Math.abs(v) >= 1e6 ? v.toExponential(3) : v.toPrecision(4));
  const lines = ['| result | baseline | this run | unit | this run vs baseline |', '| --- | --- | --- | --- | --- |'];
  for (const r of c.rows) {
    const verdict = Math.abs(r.slowdown - 1) < 0.005 ? 'the same' : r.slowdown < 1 ? `${(1 / r.slowdown).toFixed(2)}x better` : `${r.slowdown.toFixed(2)}x worse`;
    lines.push(`| ${r.key} | ${fmt(r.baseline)} | ${fmt(r.current)} | ${r.unit} | ${verdict}${r.regression ? ' **REGRESSION**' : ''} |`);
  }
  if (c.unmatched.length > 0) lines.push('', `not in the baseline: ${c.unmatched.join('; ')}`);
  lines.push('', c.regressions > 0 ? `${c.regressions} result(s) worse than the baseline by more than ${(maxRegression * 100).toFixed(0)}%` : `no result worse than the baseline by more than ${(maxRegression * 100).toFixed(0)}%`);
  return lines.join('\n');
}
