// Philox RNG: the TypeScript reference against published Philox-4x32-10 vectors, the GPU words
// bit-exact against it, floats derived identically, determinism and counter accounting, and
// mean/variance sanity on 100k samples.
import { beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '@peft-ts/errors';
import { rand, randBits, randn, type Runtime } from '../../../index.js';
import { assertClose, testRuntime } from '../../../testing/index.js';
import { normalsOf, philox4x32, philoxWords, uniformOf } from './philox.ref.js';
import { withBindingLimit } from '../test-helpers.js';

const hex = (w: readonly number[]) => w.map((v) => (v >>> 0).toString(16).padStart(8, '0'));

function moments(a: Iterable<number> & { length: number }): { mean: number; variance: number } {
  let s = 0;
  for (const x of a) s += x;
  const mean = s / a.length;
  let v = 0;
  for (const x of a) v += (x - mean) ** 2;
  return { mean, variance: v / (a.length - 1) };
}

describe('Philox RNG', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('the TypeScript reference reproduces the Random123 known-answer vectors', () => {
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  it('GPU words are bit-exact with the reference, and draws advance the counter', async () => {
    rt.manualSeed(0xdeadbeef);
    const a = randBits(rt, [3, 1, 7]);
    expect(rt.rngOffset).toBe(24);
    const b = randBits(rt, [5]);
    expect(rt.rngOffset).toBe(32);
    expect(Array.from(await a.toArray())).toEqual(Array.from(philoxWords(21, 0xdeadbeef, 0)));
    expect(Array.from(await b.toArray())).toEqual(Array.from(philoxWords(5, 0xdeadbeef, 6)));
  });

  it('64-bit counters carry into the high word', async () => {
    rt.manualSeed(7);
    rt.rngOffset = (2 ** 32 - 2) * 4;
    const a = await randBits(rt, [16]).toArray();
    expect(Array.from(a)).toEqual(Array.from(philoxWords(16, 7, 2 ** 32 - 2)));
  });

  it('rand and randn derive their floats from the words exactly as the reference does', async () => {
    rt.manualSeed(42);
    const n = 1001;
    const u = await rand(rt, [n]).toArray();
    expect(Array.from(u)).toEqual(Array.from(philoxWords(n, 42, 0), uniformOf));
    const z = await randn(rt, [n]).toArray();
    const words = philoxWords(Math.ceil(n / 4) * 4, 42, Math.ceil(n / 4));
    // log, sqrt, sin and cos are not correctly rounded on GPUs: a few ulp of values up to 5.8.
    assertClose(z, normalsOf(words).subarray(0, n), { atol: 2e-5, rtol: 1e-5 }, 'randn vs reference');
  });

  it('the same seed and call order repeat; an explicit seed leaves the stream alone', async () => {
    rt.manualSeed(99);
    const a1 = await rand(rt, [37]).toArray();
    const b1 = await randn(rt, [2, 3]).toArray();
    rt.manualSeed(99);
    const a2 = await rand(rt, [37]).toArray();
    const b2 = await randn(rt, [2, 3]).toArray();
    expect(Array.from(a2)).toEqual(Array.from(a1));
    expect(Array.from(b2)).toEqual(Array.from(b1));
    const at = rt.rngOffset;
    const s1 = await rand(rt, [37], { seed: 99 }).toArray();
    const s2 = await rand(rt, [37], { seed: 99 }).toArray();
    expect(rt.rngOffset).toBe(at);
    expect(Array.from(s1)).toEqual(Array.from(s2));
    // Seed 99 from counter 0 is the same stream the runtime drew a1 from.
    expect(Array.from(s1)).toEqual(Array.from(a1));
    expect(() => rand(rt, [3], { seed: -1 })).toThrow(UnsupportedError);
  });

  it('100k samples have the right mean and variance', async () => {
    rt.manualSeed(5);
    const n = 100_000;
    const u = moments(await rand(rt, [n]).toArray());
    // Standard errors: mean 0.29/sqrt(n) = 9e-4, variance ~2.4e-4 (uniform); 3e-3 / 4.5e-3 (normal).
    expect(Math.abs(u.mean - 0.5)).toBeLessThan(0.004);
    expect(Math.abs(u.variance - 1 / 12)).toBeLessThan(0.001);
    const z = moments(await randn(rt, [n]).toArray());
    expect(Math.abs(z.mean)).toBeLessThan(0.013);
    expect(Math.abs(z.variance - 1)).toBeLessThan(0.02);
  });

  it('splits a large draw across bindings without changing the numbers', async () => {
    rt.manualSeed(3);
    await withBindingLimit(rt, 1024, async () => {
      const before = rt.totalDispatches;
      const w = randBits(rt, [1003]);
      expect(rt.totalDispatches - before).toBe(4);
      expect(Array.from(await w.toArray())).toEqual(Array.from(philoxWords(1003, 3, 0)));
    });
  });
});
