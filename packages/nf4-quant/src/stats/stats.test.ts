import { ShapeMismatchError } from '@peft-ts/errors';
import { describe, expect, it } from 'vitest';
import { compareQuantizers, dequantizeInt4Absmax, errorStats, quantizeInt4Absmax } from '../index.js';
import { BNB4BIT_FILE, withFile } from '../test-fixtures.js';

describe('errorStats', () => {
  it('computes RMSE, max and mean absolute error and SNR in dB', () => {
    const ref = Float32Array.from([3, -4, 0, 1]);
    const approx = Float32Array.from([3, -3, 0.5, 1]);
    const s = errorStats(ref, approx);
    // errors 0, -1, -0.5, 0: noise energy 1.25, signal energy 26
    expect(s.rmse).toBeCloseTo(Math.sqrt(1.25 / 4), 12);
    expect(s.maxAbsError).toBe(1);
    expect(s.meanAbsError).toBeCloseTo(1.5 / 4, 12);
    expect(s.snrDb).toBeCloseTo(10 * Math.log10(26 / 1.25), 12);
    expect(errorStats(ref, ref).snrDb).toBe(Infinity);
    expect(() => errorStats(ref, approx.slice(1))).toThrow(ShapeMismatchError);
  });
});

describe('absmax int4 baseline', () => {
  it('uses 15 symmetric levels with exact zero and exact block maxima', () => {
    const v = Float32Array.from([0.7, -0.35, 0, 0.05, -0.7, 0.36, 0.1, 0.2]);
    const q = quantizeInt4Absmax(v, 32);
    expect(Array.from(q.levels)).toEqual([7, -4, 0, 1, -7, 4, 1, 2]);
    const back = dequantizeInt4Absmax(q);
    expect(back[0]).toBe(Math.fround(0.7));
    expect(back[4]).toBe(Math.fround(-0.7));
    expect(back[2]).toBe(0);
    expect(Math.max(...Array.from(q.levels, Math.abs))).toBeLessThanOrEqual(7);
  });
});

describe('compareQuantizers', () => {
  it('shows NF4 beating FP4 and absmax int4 on normally distributed data (the QLoRA claim)', async () => {
    const results: Record<string, ReturnType<typeof compareQuantizers>> = {};
    await withFile(BNB4BIT_FILE, async (f) => {
      for (const name of ['normal_1000', 'normal_odd_999', 'q_proj_64x64', 'gate_proj_160x64']) {
        results[name] = compareQuantizers(await f.readF32(`${name}.input`));
      }
    });
    for (const r of Object.values(results)) {
      expect(r.nf4.rmse).toBeLessThan(r.fp4.rmse);
      expect(r.nf4.rmse).toBeLessThan(r.int4.rmse);
      expect(r.nf4.snrDb).toBeGreaterThan(r.fp4.snrDb);
      expect(r.nf4.snrDb).toBeGreaterThan(r.int4.snrDb);
      // Double quantization costs almost nothing in accuracy.
      expect(Math.abs(r.nf4DoubleQuant.snrDb - r.nf4.snrDb)).toBeLessThan(0.1);
    }
    // 4-bit blockwise NF4 on Gaussian weights lands near 20 dB.
    expect(results.gate_proj_160x64?.nf4.snrDb).toBeGreaterThan(18);
    expect(results.gate_proj_160x64?.nf4.snrDb).toBeLessThan(23);
  });
});
