// cast: every f16 and bf16 bit pattern widened and narrowed, and f32 edge cases plus random bit
// patterns rounded, all bit-exact against the host conversions; the gradient passes through.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError } from '@peft-ts/errors';
import { backward, bf16WordsToF32, cast, f16WordsToF32, f32ToBf16Bits, f32ToF16Bits, fromArray, type Runtime, type Tensor } from '../../../index.js';
import { randn, rng, testRuntime } from '../../../testing/index.js';

/** The gradient a backward pass left on `t` (fails the test when there is none). */
function gradOf(t: Tensor): Tensor {
  if (!t.grad) throw new Error(`${t.toString()} has no gradient`);
  return t.grad;
}

const isNaN16 = (h: number, dtype: 'f16' | 'bf16') => (dtype === 'f16' ? (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 : (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0);

/** Compares 16-bit words; where the expected value is a NaN any NaN will do. */
function expectSameHalves(got: Uint16Array, expected: ArrayLike<number>, dtype: 'f16' | 'bf16', label: string): void {
  let bad = 0;
  let first = '';
  for (let i = 0; i < got.length; i++) {
    const e = expected[i] ?? -1;
    const g = got[i] ?? -2;
    if (g === e || (isNaN16(e, dtype) && isNaN16(g, dtype))) continue;
    if (bad++ === 0) first = `at ${i}: got 0x${g.toString(16)}, expected 0x${e.toString(16)}`;
  }
  expect(bad, `${label}: ${bad} mismatches, first ${first}`).toBe(0);
}

/** Compares f32 bit patterns; where the expected value is NaN any NaN will do. */
function expectSameFloats(got: Float32Array, expected: Float32Array, label: string): void {
  const gb = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const eb = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let bad = 0;
  let first = '';
  for (let i = 0; i < got.length; i++) {
    if (gb[i] === eb[i] || (Number.isNaN(expected[i]) && Number.isNaN(got[i]))) continue;
    if (bad++ === 0) first = `at ${i}: got ${got[i]}, expected ${expected[i]}`;
  }
  expect(bad, `${label}: ${bad} mismatches, first ${first}`).toBe(0);
}

describe('cast', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  const allWords = Uint16Array.from({ length: 65536 }, (_, i) => i);

  it('widens every f16 and bf16 bit pattern exactly and converts between them', async () => {
    const fromF16 = fromArray(rt, allWords, [65536], 'f16');
    const f16Values = f16WordsToF32(allWords);
    expectSameFloats((await cast(fromF16, 'f32').toArray()) as Float32Array, f16Values, 'f16 -> f32');
    expectSameHalves((await cast(fromF16, 'bf16').toRaw()) as Uint16Array, Array.from(f16Values, f32ToBf16Bits), 'bf16', 'f16 -> bf16');
    const fromBf16 = fromArray(rt, allWords, [65536], 'bf16');
    const bf16Values = bf16WordsToF32(allWords);
    expectSameFloats((await cast(fromBf16, 'f32').toArray()) as Float32Array, bf16Values, 'bf16 -> f32');
    expectSameHalves((await cast(fromBf16, 'f16').toRaw()) as Uint16Array, Array.from(bf16Values, f32ToF16Bits), 'f16', 'bf16 -> f16');
  });

  it('rounds f32 to f16 and bf16 like the host: ties to even, overflow, subnormals, signed zero, NaN', async () => {
    const edge = [
      0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, Infinity, -Infinity, NaN,
      2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -26, 5.96e-8, 1e-7, 1e-40, -1e-45,
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4028234663852886e38, 1.1754943508222875e-38,
    ];
    const r = rng(600);
    const bits = Uint32Array.from({ length: 50000 }, () => Math.floor(r() * 2 ** 32));
    const values = new Float32Array(edge.length + bits.length);
    values.set(edge);
    values.set(new Float32Array(bits.buffer), edge.length);
    const x = fromArray(rt, values, [values.length]);
    expectSameHalves((await cast(x, 'f16').toRaw()) as Uint16Array, Array.from(values, f32ToF16Bits), 'f16', 'f32 -> f16');
    expectSameHalves((await cast(x, 'bf16').toRaw()) as Uint16Array, Array.from(values, f32ToBf16Bits), 'bf16', 'f32 -> bf16');
    // An odd element count leaves half of the last word: the shape and values still hold.
    const odd = cast(fromArray(rt, [1.5, -2.25, 3], [3]), 'f16');
    expect(odd.shape).toEqual([3]);
    expect(Array.from(await odd.toArray())).toEqual([1.5, -2.25, 3]);
  });

  it('passes the gradient straight through to an f32 input', async () => {
    const x = fromArray(rt, randn(37, 601), [37], 'f32', { requiresGrad: true });
    const g = randn(37, 602);
    backward(cast(x, 'bf16'), fromArray(rt, g, [37]));
    expect(Array.from(await gradOf(x).toArray())).toEqual(Array.from(g));
  });

  it('copies on a same-dtype cast and rejects integer dtypes', async () => {
    const x = fromArray(rt, [1, 2, 3], [3], 'f16');
    const y = cast(x, 'f16');
    expect(y.storage).not.toBe(x.storage);
    expect(Array.from(await y.toArray())).toEqual([1, 2, 3]);
    expect(() => cast(fromArray(rt, [1], [1], 'i32'), 'f32')).toThrow(DTypeError);
    expect(() => cast(x, 'u8')).toThrow(/cast: .*f16 to u8/);
  });
});
