// The demo's learning claim: confusion counts, accuracy, the majority-class rate, and a verdict
// that a constant answer or a chance-level one never passes.
import { describe, expect, it } from 'vitest';
import { accuracy, answerLabel, confusion, confusionTable, majorityRate, OTHER, verdict, verdictLine } from './verdict.js';

const LABELS = ['positive', 'negative', 'neutral'];

/** Held-out reviews: 5 positive, 5 negative, 6 neutral (majority rate 6/16 = 37.5%). */
const EXPECTED = [...Array<string>(5).fill('positive'), ...Array<string>(5).fill('negative'), ...Array<string>(6).fill('neutral')];

const answers = (got: (expected: string, i: number) => string) => EXPECTED.map((expected, i) => ({ expected, got: got(expected, i) }));

describe('demo verdict', () => {
  it('reads the label from the first word of an answer', () => {
    expect(answerLabel('Negative.', LABELS)).toBe('negative');
    expect(answerLabel('  positive review', LABELS)).toBe('positive');
    expect(answerLabel('mo every*er', LABELS)).toBe(OTHER);
    expect(answerLabel('', LABELS)).toBe(OTHER);
  });

  it('counts expected against answered labels, with unlabelled answers apart', () => {
    const c = confusion(LABELS, [
      { expected: 'positive', got: 'positive' },
      { expected: 'positive', got: 'negative' },
      { expected: 'neutral', got: 'gibberish' },
      { expected: 'negative', got: 'negative' },
    ]);
    expect(c.counts).toEqual([
      [1, 1, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 0, 1],
    ]);
    expect(accuracy(c)).toBe(0.5);
    expect(majorityRate(c)).toBe(0.5);
    expect(() => confusion(LABELS, [{ expected: 'mixed', got: 'positive' }])).toThrow(RangeError);
  });

  it('does not claim learning for a model that answers one label every time', () => {
    // The case that used to be announced as learned: "negative" for every review.
    const v = verdict(confusion(LABELS, answers(() => 'negative')));
    expect(v.accuracy).toBeCloseTo(5 / 16, 12);
    expect(v.majority).toBeCloseTo(6 / 16, 12);
    expect(v.learned).toBe(false);
    // Even the most common label, answered every time, is only the majority rate.
    expect(verdict(confusion(LABELS, answers(() => 'neutral'))).learned).toBe(false);
    expect(verdictLine(v, 0)).toMatch(/^held-out label accuracy 0% -> 31%, not 15 percentage points above .*chance 33%, always answering the most common label 38%; needs 53%\): not learned yet/);
  });

  it('claims learning only at max(chance, majority) + margin', () => {
    // 8/16 = 50%: above chance and majority, but by less than 15 points.
    const below = verdict(confusion(LABELS, answers((e, i) => (i % 2 === 0 ? e : 'other'))));
    expect(below.accuracy).toBe(0.5);
    expect(below.threshold).toBeCloseTo(0.375 + 0.15, 12);
    expect(below.learned).toBe(false);
    // 9/16 = 56.25% >= 52.5%.
    const above = verdict(confusion(LABELS, answers((e, i) => (i % 2 === 0 || i === 1 ? e : 'other'))));
    expect(above.accuracy).toBe(9 / 16);
    expect(above.learned).toBe(true);
    expect(verdictLine(above, 0)).toMatch(/0% -> 56%, at least 15 percentage points above both .*: the task was learned$/);
    // The margin is a parameter; the same answers fail a stricter one.
    expect(verdict(confusion(LABELS, answers((e, i) => (i % 2 === 0 || i === 1 ? e : 'other'))), 0.25).learned).toBe(false);
    // With a dominant class the bar is the majority rate, not chance.
    const skewed = confusion(LABELS, [...Array.from({ length: 12 }, () => ({ expected: 'positive', got: 'positive' })), ...Array.from({ length: 4 }, () => ({ expected: 'negative', got: 'positive' }))]);
    expect(verdict(skewed).majority).toBe(0.75);
    expect(verdict(skewed).learned).toBe(false);
    expect(verdict(confusion(LABELS, [])).learned).toBe(false);
  });

  it('prints the confusion as an aligned table', () => {
    const lines = confusionTable(confusion(LABELS, answers((e, i) => (i < 3 ? e : 'negative'))));
    // Every column ends where its header does.
    const ends = (line: string) => [...line.matchAll(/\S+/g)].map((m) => m.index + m[0].length);
    for (const line of lines.slice(1)) expect(ends(line).slice(1)).toEqual(ends(lines[0] ?? '').slice(-4));
    expect(lines).toEqual([
      'expected \\ answered  positive  negative  neutral  (other)',
      'positive                    3         2        0        0',
      'negative                    0         5        0        0',
      'neutral                     0         6        0        0',
    ]);
  });
});
