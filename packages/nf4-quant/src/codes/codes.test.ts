import { describe, expect, it } from 'vitest';
import {
  DYNAMIC_MAP_SIGNED,
  DYNAMIC_MAP_UNSIGNED,
  FP4_CODE,
  FP4_QUANT_MAP,
  NF4_CODE,
  NF4_THRESHOLDS,
  fp4Index,
  nf4Index,
} from '../index.js';
import { BNB, BNB4BIT_FILE, bits, withFile } from '../test-fixtures.js';

// One float32 ulp up / down (finite, non-zero values only).
const nextUp = (x: number) => {
  const a = new Float32Array([x]);
  const u = new Int32Array(a.buffer);
  u[0] = (u[0] ?? 0) + (x > 0 ? 1 : -1);
  return a[0] ?? NaN;
};

describe('code tables', () => {
  it('ships the dynamic maps bit for bit as bitsandbytes builds them', async () => {
    await withFile(BNB4BIT_FILE, async (f) => {
      expect(bits(DYNAMIC_MAP_SIGNED)).toEqual(bits(await f.readF32('dynamic_map_signed')));
      expect(bits(DYNAMIC_MAP_UNSIGNED)).toEqual(bits(await f.readF32('dynamic_map_unsigned')));
    });
    expect(DYNAMIC_MAP_SIGNED[127]).toBe(0);
    expect(DYNAMIC_MAP_SIGNED[255]).toBe(1);
    for (let i = 1; i < 256; i++) expect(DYNAMIC_MAP_SIGNED[i]).toBeGreaterThan(DYNAMIC_MAP_SIGNED[i - 1] ?? 0);
  });

  it('has the NF4 and FP4 tables bitsandbytes serializes as quant_map', async () => {
    await withFile(`${BNB}linear4bit-nf4.safetensors`, async (f) => {
      expect(bits(NF4_CODE)).toEqual(bits(await f.readF32('weight.quant_map')));
    });
    await withFile(`${BNB}linear4bit-fp4.safetensors`, async (f) => {
      expect(bits(FP4_QUANT_MAP)).toEqual(bits(await f.readF32('weight.quant_map')));
    });
    expect(Array.from(NF4_CODE.slice(0, 3))).toEqual([-1, Math.fround(-0.6961928009986877), Math.fround(-0.5250730514526367)]);
    // Dequantization applies the sign bit: pattern 8 is -0.0, where the stored table has +0.0.
    expect(Object.is(FP4_CODE[8], -0)).toBe(true);
    expect(Object.is(FP4_QUANT_MAP[8], 0)).toBe(true);
    expect(FP4_CODE[3]).toBe(1);
    expect(FP4_CODE[11]).toBe(-1);
  });

  it('maps a value on an NF4 threshold to the lower index and one ulp above to the upper', () => {
    expect(NF4_THRESHOLDS.length).toBe(15);
    for (let i = 0; i < 15; i++) {
      const t = NF4_THRESHOLDS[i] ?? NaN;
      expect(nf4Index(t)).toBe(i);
      expect(nf4Index(nextUp(t))).toBe(i + 1);
    }
    expect(nf4Index(-1)).toBe(0);
    expect(nf4Index(1)).toBe(15);
    expect(nf4Index(0)).toBe(7);
    expect(nf4Index(-0)).toBe(7);
    expect(nf4Index(NaN)).toBe(0);
  });

  it('picks each NF4 code for its own value', () => {
    for (let i = 0; i < 16; i++) expect(nf4Index(NF4_CODE[i] ?? NaN)).toBe(i);
  });

  it('maps FP4 magnitudes by the kernel thresholds and sets the sign only below zero', () => {
    // Each FP4 value maps back to its own pattern, except -0.0 which has no sign bit set.
    for (let p = 0; p < 16; p++) {
      const v = FP4_CODE[p] ?? NaN;
      expect(fp4Index(v)).toBe(p === 8 ? 0 : p);
    }
    expect(fp4Index(Math.fround(0.8333333))).toBe(0b010);
    expect(fp4Index(nextUp(Math.fround(0.8333333)))).toBe(0b011);
    expect(fp4Index(Math.fround(0.00260417))).toBe(0);
    expect(fp4Index(nextUp(Math.fround(0.00260417)))).toBe(1);
    expect(fp4Index(-1e-9)).toBe(8);
    expect(fp4Index(NaN)).toBe(0);
  });
});
