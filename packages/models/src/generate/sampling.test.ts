// Logits processing in transformers' order and seeded sampling.
import { describe, expect, it } from 'vitest';
import { argmax, processLogits, seededRandom, selectToken, softmax, validateSampling } from './sampling.js';

describe('sampling', () => {
  const logits = Float32Array.of(1, 3, -2, 0.5, 3, -1);

  it('greedy takes the first maximum', () => {
    expect(argmax(logits)).toBe(1);
    expect(selectToken(logits, [], {}, seededRandom(1))).toBe(1);
  });

  it('applies the repetition penalty as transformers does (divide positive, multiply negative scores)', () => {
    const s = processLogits(logits, [1, 2, 1], { repetitionPenalty: 2 });
    expect(Array.from(s)).toEqual([1, 1.5, -4, 0.5, 3, -1]);
    expect(selectToken(logits, [1], { repetitionPenalty: 2 }, seededRandom(1))).toBe(4);
  });

  it('keeps only the top-k scores, ties included, after temperature', () => {
    const s = processLogits(logits, [], { doSample: true, topK: 2, temperature: 0.5 });
    expect(Array.from(s)).toEqual([-Infinity, 6, -Infinity, -Infinity, 6, -Infinity]);
  });

  it('drops the low-probability tail beyond top-p and always keeps the best token', () => {
    const p = softmax(Float64Array.from(logits));
    const s = processLogits(logits, [], { doSample: true, topP: 0.9 });
    // Ascending mass: -2 (0.003), -1 (0.009), 0.5 (0.04), 1 (0.07): the first three sum to < 0.1.
    const removed = Array.from(s).map((x, i) => (x === -Infinity ? i : -1)).filter((i) => i >= 0);
    const removedMass = removed.reduce((a, i) => a + (p[i] ?? 0), 0);
    expect(removedMass).toBeLessThanOrEqual(0.1);
    expect(removed.sort()).toEqual([2, 3, 5]);
    const tiny = processLogits(logits, [], { doSample: true, topP: 1e-6 });
    expect(Array.from(tiny).filter((x) => x !== -Infinity)).toHaveLength(1);
  });

  it('samples reproducibly with a seed and in proportion to the probabilities', () => {
    const draw = (seed: number) => {
      const r = seededRandom(seed);
      return Array.from({ length: 20 }, () => selectToken(logits, [], { doSample: true }, r));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    const r = seededRandom(7);
    const counts = new Array<number>(6).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const k = selectToken(logits, [], { doSample: true }, r);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    const p = softmax(Float64Array.from(logits));
    counts.forEach((c, i) => expect(Math.abs(c / n - (p[i] ?? 0))).toBeLessThan(0.01));
  });

  it('rejects invalid options by name', () => {
    expect(() => validateSampling({ temperature: 0 })).toThrow(/temperature: expected a number > 0, got 0/);
    expect(() => validateSampling({ topP: 1.5 })).toThrow(/topP/);
    expect(() => validateSampling({ topK: 2.5 })).toThrow(/topK/);
  });
});
