// Checks the bf16/f16 conversions: widening over every 16-bit word against a formula, and
// narrowing against a nearest-value search with ties to even over every midpoint.
import { describe, expect, it } from 'vitest';
import {
  bf16ToF32,
  bf16ToF32Scalar,
  f16ToF32,
  f16ToF32Scalar,
  f32ToBf16,
  f32ToBf16Scalar,
  f32ToF16,
  f32ToF16Scalar,
} from '../index.js';

const ALL_WORDS = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Value of an f16 word from its fields. */
function refF16(w: number): number {
  const sign = w & 0x8000 ? -1 : 1;
  const e = (w >> 10) & 0x1f;
  const m = w & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Value of a bf16 word from its fields. */
function refBf16(w: number): number {
  const sign = w & 0x8000 ? -1 : 1;
  const e = (w >> 7) & 0xff;
  const m = w & 0x7f;
  if (e === 0xff) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -133;
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0] ?? -1;
}

function bitsF32(bits: number): number {
  return new Float32Array(Uint32Array.of(bits).buffer)[0] ?? NaN;
}

/**
 * Nearest-value rounding by search: `ladder[w]` is the value of positive word w, increasing,
 * with the infinity word standing in for the next power of two (where rounding overflows).
 */
function makeRounder(ladder: Float64Array): (x: number) => number {
  const infWord = ladder.length - 1;
  return (x: number) => {
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const a = Math.abs(x);
    if (a >= (ladder[infWord] ?? 0)) return sign | infWord;
    let lo = 0;
    let hi = infWord;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((ladder[mid] ?? 0) <= a) lo = mid;
      else hi = mid;
    }
    const below = a - (ladder[lo] ?? 0);
    const above = (ladder[hi] ?? 0) - a;
    if (below < above) return sign | lo;
    if (above < below) return sign | hi;
    return sign | (lo % 2 === 0 ? lo : hi);
  };
}

const f16Ladder = Float64Array.from({ length: 0x7c01 }, (_, w) => (w === 0x7c00 ? 2 ** 16 : refF16(w)));
const bf16Ladder = Float64Array.from({ length: 0x7f81 }, (_, w) => (w === 0x7f80 ? 2 ** 128 : refBf16(w)));
const refToF16 = makeRounder(f16Ladder);
const refToBf16 = makeRounder(bf16Ladder);

/** Every midpoint between adjacent positive words, and the f32 values either side of it, both signs. */
function midpointInputs(ladder: Float64Array): Float32Array {
  const out: number[] = [];
  for (let w = 0; w + 1 < ladder.length; w++) {
    const mid = ((ladder[w] ?? 0) + (ladder[w + 1] ?? 0)) / 2;
    expect(Math.fround(mid)).toBe(mid);
    const bits = f32Bits(mid);
    for (const b of [bits - 1, bits, bits + 1]) {
      out.push(bitsF32(b), -bitsF32(b));
    }
  }
  return Float32Array.from(out);
}

function randomF32(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    // xorshift32: uniform over bit patterns, so every exponent is exercised.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    bits[i] = s;
  }
  return new Float32Array(bits.buffer);
}

function mismatches(got: Uint16Array, input: Float32Array, ref: (x: number) => number): string[] {
  const bad: string[] = [];
  for (let i = 0; i < input.length; i++) {
    const x = input[i] ?? 0;
    if (Number.isNaN(x)) continue;
    const want = ref(x);
    if (got[i] !== want && bad.length < 5) bad.push(`${x} (0x${f32Bits(x).toString(16)}): got 0x${got[i]?.toString(16)}, want 0x${want.toString(16)}`);
  }
  return bad;
}

describe('widening', () => {
  /** Words where `convert` (array and scalar) disagrees with `ref` in value or with `expectedBits` in bits. */
  function wideningMismatches(
    convert: (x: Uint16Array) => Float32Array,
    scalar: (w: number) => number,
    ref: (w: number) => number,
    expectedBits: (w: number) => number,
  ): string[] {
    const out = convert(ALL_WORDS);
    const bits = new Uint32Array(out.buffer);
    const bad: string[] = [];
    for (let w = 0; w < 65536; w++) {
      const want = ref(w);
      const got = out[w] ?? 0;
      const ok = Number.isNaN(want)
        ? Number.isNaN(got) && Number.isNaN(scalar(w))
        : Object.is(got, want) && Object.is(scalar(w), want);
      if ((!ok || bits[w] !== expectedBits(w)) && bad.length < 5) {
        bad.push(`word 0x${w.toString(16)}: got ${got} (bits 0x${bits[w]?.toString(16)}), want ${want}`);
      }
    }
    return bad;
  }

  it('f16ToF32 matches the field formula for all 65536 words, NaN payloads kept', () => {
    // For NaN and infinity the expected bits carry the sign and payload across; the formula
    // checks every other word's value, and the bits then follow from it.
    const expectedBits = (w: number) => {
      if ((w & 0x7c00) === 0x7c00) return (((w & 0x8000) << 16) | 0x7f800000 | ((w & 0x3ff) << 13)) >>> 0;
      return new Uint32Array(Float32Array.of(refF16(w)).buffer)[0] ?? -1;
    };
    expect(wideningMismatches(f16ToF32, f16ToF32Scalar, refF16, expectedBits)).toEqual([]);
    expect(f16ToF32Scalar(0x0001)).toBe(2 ** -24);
    expect(f16ToF32Scalar(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToF32Scalar(0x7bff)).toBe(65504);
    expect(Object.is(f16ToF32Scalar(0x8000), -0)).toBe(true);
  });

  it('bf16ToF32 matches the field formula for all 65536 words, NaN payloads kept', () => {
    expect(wideningMismatches(bf16ToF32, bf16ToF32Scalar, refBf16, (w) => (w << 16) >>> 0)).toEqual([]);
  });
});

describe('f32ToF16', () => {
  it('rounds every midpoint between adjacent f16 values (and its neighbours) to nearest, ties to even', () => {
    const input = midpointInputs(f16Ladder);
    expect(input.length).toBeGreaterThan(6 * 0x7b00);
    expect(mismatches(f32ToF16(input), input, refToF16)).toEqual([]);
  });

  it('agrees with the nearest-value search on 300k random f32 bit patterns', () => {
    const input = randomF32(300_000, 12345);
    expect(mismatches(f32ToF16(input), input, refToF16)).toEqual([]);
  });

  it('round-trips every non-NaN f16 word exactly', () => {
    const widened = f16ToF32(ALL_WORDS);
    const back = f32ToF16(widened);
    for (let w = 0; w < 65536; w++) if (!Number.isNaN(widened[w])) expect(back[w]).toBe(w);
  });

  it('handles ties, overflow, infinities, NaN and subnormals', () => {
    expect(f32ToF16Scalar(1 + 2 ** -11)).toBe(0x3c00); // tie, down to even
    expect(f32ToF16Scalar(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, up to even
    expect(f32ToF16Scalar(65504)).toBe(0x7bff);
    expect(f32ToF16Scalar(65519.99)).toBe(0x7bff);
    expect(f32ToF16Scalar(65520)).toBe(0x7c00); // tie with the overflow point goes to infinity
    expect(f32ToF16Scalar(3.4e38)).toBe(0x7c00);
    expect(f32ToF16Scalar(-1e10)).toBe(0xfc00);
    expect(f32ToF16Scalar(Infinity)).toBe(0x7c00);
    expect(f32ToF16Scalar(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Scalar(-0)).toBe(0x8000);
    expect(f32ToF16Scalar(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Scalar(2 ** -25)).toBe(0x0000); // tie, down to even zero
    expect(f32ToF16Scalar(-(2 ** -25) * 1.0001)).toBe(0x8001);
    expect(f32ToF16Scalar(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 ulps, to even
    expect(f32ToF16Scalar(2 ** -14 - 2 ** -25)).toBe(0x0400); // tie at the top of the subnormals, up to the smallest normal
    expect(f32ToF16Scalar(2 ** -26)).toBe(0x0000);
    expect(f32ToF16Scalar(1e-45)).toBe(0x0000); // f32 subnormal input
    const nans = new Float32Array(new Uint32Array([0x7fc00000, 0x7f800001, 0xff800001, 0x7fa00000]).buffer);
    const words = f32ToF16(nans);
    expect([...words]).toEqual([0x7e00, 0x7e00, 0xfe00, 0x7f00]);
    for (const w of words) expect(Number.isNaN(f16ToF32Scalar(w))).toBe(true);
  });
});

describe('f32ToBf16', () => {
  it('rounds every midpoint between adjacent bf16 values (and its neighbours) to nearest, ties to even', () => {
    const input = midpointInputs(bf16Ladder);
    expect(mismatches(f32ToBf16(input), input, refToBf16)).toEqual([]);
  });

  it('agrees with the nearest-value search on 300k random f32 bit patterns', () => {
    const input = randomF32(300_000, 777);
    expect(mismatches(f32ToBf16(input), input, refToBf16)).toEqual([]);
  });

  it('handles ties, overflow, infinities, NaN and subnormals', () => {
    expect(f32ToBf16Scalar(1 + 2 ** -8)).toBe(0x3f80); // tie, down to even
    expect(f32ToBf16Scalar(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, up to even
    expect(f32ToBf16Scalar(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    const maxBf16 = bf16ToF32Scalar(0x7f7f);
    expect(f32ToBf16Scalar(maxBf16)).toBe(0x7f7f);
    expect(f32ToBf16Scalar(3.4028234663852886e38)).toBe(0x7f80); // f32 max rounds past the largest bf16
    expect(f32ToBf16Scalar(-Infinity)).toBe(0xff80);
    expect(f32ToBf16Scalar(-0)).toBe(0x8000);
    expect(f32ToBf16Scalar(2 ** -133)).toBe(0x0001); // bf16 subnormal
    expect(f32ToBf16Scalar(2 ** -134)).toBe(0x0000); // tie, to even zero
    expect(f32ToBf16Scalar(3 * 2 ** -134)).toBe(0x0002);
    const nans = new Float32Array(new Uint32Array([0x7fc00000, 0x7f800001, 0xff800001, 0x7fa00000]).buffer);
    const words = f32ToBf16(nans);
    // A NaN whose payload sits only in the dropped bits must not become infinity.
    expect([...words]).toEqual([0x7fc0, 0x7fc0, 0xffc0, 0x7fe0]);
    for (const w of words) expect(Number.isNaN(bf16ToF32Scalar(w))).toBe(true);
  });

  it('converts arrays that start at an offset into a shared buffer', () => {
    const backing = new Float32Array([9, 1.5, -2.25, 3e38, 7]);
    const view = backing.subarray(1, 4);
    expect([...f32ToBf16(view)]).toEqual([0x3fc0, 0xc010, f32ToBf16Scalar(3e38)]);
    expect([...f32ToF16(view)]).toEqual([0x3e00, 0xc080, 0x7c00]);
  });
});
