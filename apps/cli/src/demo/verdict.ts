// Whether the demo's model learned its held-out classification task: a confusion table over the
// labels, and a verdict that asks for more than chance and more than always answering the most
// common label, by a stated margin.

/** Answers that are none of the labels are counted in this column. */
export const OTHER = '(other)';

export interface Confusion {
  labels: readonly string[];
  /** counts[e][p]: examples whose expected label is labels[e], answered labels[p], or OTHER at p = labels.length. */
  counts: number[][];
}

/** The label an answer gives: its first word, lower-cased, without trailing punctuation. */
export function answerLabel(text: string, labels: readonly string[]): string {
  const first = text.trim().split(/\s+/)[0]?.toLowerCase().replace(/[.,;:!?]+$/, '') ?? '';
  return labels.includes(first) ? first : OTHER;
}

export function confusion(labels: readonly string[], pairs: readonly { expected: string; got: string }[]): Confusion {
  const counts = labels.map(() => new Array<number>(labels.length + 1).fill(0));
  for (const { expected, got } of pairs) {
    const e = labels.indexOf(expected);
    if (e < 0) throw new RangeError(`confusion: expected label ${JSON.stringify(expected)} is not one of ${labels.join(', ')}`);
    const p = labels.indexOf(answerLabel(got, labels));
    const row = counts[e];
    if (row) row[p < 0 ? labels.length : p] = (row[p < 0 ? labels.length : p] ?? 0) + 1;
  }
  return { labels, counts };
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

export function total(c: Confusion): number {
  return sum(c.counts.map(sum));
}

export function correct(c: Confusion): number {
  return sum(c.counts.map((row, i) => row[i] ?? 0));
}

export function accuracy(c: Confusion): number {
  const n = total(c);
  return n === 0 ? 0 : correct(c) / n;
}

/** The accuracy of always answering the most common expected label. */
export function majorityRate(c: Confusion): number {
  const n = total(c);
  return n === 0 ? 0 : Math.max(...c.counts.map(sum)) / n;
}

export interface Verdict {
  learned: boolean;
  accuracy: number;
  chance: number;
  majority: number;
  /** The accuracy needed to claim learning: max(chance, majority) + margin. */
  threshold: number;
  margin: number;
}

/** Learning is claimed only when accuracy is at least `margin` above both chance and the majority-class rate. */
export function verdict(c: Confusion, margin = 0.15): Verdict {
  const chance = 1 / Math.max(1, c.labels.length);
  const majority = majorityRate(c);
  const acc = accuracy(c);
  const threshold = Math.max(chance, majority) + margin;
  // A small tolerance so that a rate exactly at the threshold (e.g. 9/16 vs 0.5625) counts.
  return { learned: total(c) > 0 && acc >= threshold - 1e-9, accuracy: acc, chance, majority, threshold, margin };
}

/** The confusion table as aligned text lines: expected labels down, answers across. */
export function confusionTable(c: Confusion): string[] {
  const columns = [...c.labels, OTHER];
  const head = ['expected \\ answered', ...columns];
  const rows = c.labels.map((l, i) => [l, ...columns.map((_, j) => String(c.counts[i]?.[j] ?? 0))]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => (r[j] ?? '').length)));
  const fmt = (r: string[]) => r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j] ?? 0) : cell.padStart(widths[j] ?? 0))).join('  ');
  return [fmt(head), ...rows.map(fmt)];
}

export const percent = (x: number): string => `${(100 * x).toFixed(0)}%`;

/** The demo's closing sentence about the held-out task. */
export function verdictLine(v: Verdict, before: number | null): string {
  const change = `${before === null ? '' : `${percent(before)} -> `}${percent(v.accuracy)}`;
  const points = `${(100 * v.margin).toFixed(0)} percentage points`;
  const bar = `chance ${percent(v.chance)}, always answering the most common label ${percent(v.majority)}`;
  return v.learned
    ? `held-out label accuracy ${change}, at least ${points} above both chance and the most common label (${bar}): the task was learned`
    : `held-out label accuracy ${change}, not ${points} above both chance and the most common label (${bar}; needs ${percent(v.threshold)}): not learned yet (try more --steps)`;
}
