// dropout: the mask equals the TypeScript Philox reference exactly, backward regenerates the same
// mask, checkpoint() recomputation reuses the counters, identity cases, 16-bit input, errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, UnsupportedError } from '@peft-ts/errors';
import { backward, checkpoint, dropout, fromArray, mul, type Runtime } from '../../../index.js';
import { randn, testRuntime } from '../../../testing/index.js';
import { philoxWords } from './philox.ref.js';
import { gradOf, withBindingLimit } from '../test-helpers.js';

/** Expected dropout output from the reference stream at `firstBlock`: x * scale where kept, else 0. */
function dropoutRef(x: ArrayLike<number>, p: number, seed: number, firstBlock: number): Float32Array {
  const words = philoxWords(x.length, seed, firstBlock);
  const thr = Math.round(p * 2 ** 24);
  const scale = Math.fround(1 / (1 - p));
  return Float32Array.from({ length: x.length }, (_, i) => ((words[i] ?? 0) >>> 8 >= thr ? Math.fround((x[i] ?? 0) * scale) : 0));
}

describe('dropout', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('masks exactly as the reference Philox stream says and backward reuses the mask', async () => {
    rt.manualSeed(2024);
    rt.rngOffset = 40;
    const shape = [3, 1, 337];
    const data = randn(1011, 1);
    const g = randn(1011, 2);
    const x = fromArray(rt, data, shape, 'f32', { requiresGrad: true });
    const y = dropout(x, 0.3);
    expect(rt.rngOffset).toBe(40 + 1012);
    // Something else draws between forward and backward: backward must not care.
    dropout(fromArray(rt, data, shape), 0.5);
    rt.manualSeed(1);
    const expected = dropoutRef(data, 0.3, 2024, 10);
    expect(Array.from(await y.toArray())).toEqual(Array.from(expected));
    backward(y, fromArray(rt, g, shape));
    const kept = expected.map((v, i) => (v !== 0 || (data[i] ?? 0) === 0 ? 1 : 0));
    const gradRef = dropoutRef(Float32Array.from(g, (v, i) => v * (kept[i] ?? 0)), 0.3, 2024, 10);
    expect(Array.from(await gradOf(x).toArray())).toEqual(Array.from(gradRef));
  });

  it('keeps about 1 - p of 100k elements', async () => {
    rt.manualSeed(8);
    const n = 100_000;
    const y = (await dropout(fromArray(rt, new Float32Array(n).fill(1), [n]), 0.1).toArray()) as Float32Array;
    const kept = y.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0);
    // Binomial standard deviation sqrt(n p (1 - p)) = 95.
    expect(Math.abs(kept - 0.9 * n)).toBeLessThan(500);
    expect(y.every((v) => v === 0 || v === Math.fround(1 / 0.9))).toBe(true);
  });

  it('under checkpoint() the recomputation regenerates the same mask', async () => {
    rt.manualSeed(77);
    const data = randn(515, 3);
    const wData = randn(515, 4);
    const x = fromArray(rt, data, [5, 103], 'f32', { requiresGrad: true });
    const w = fromArray(rt, wData, [5, 103], 'f32', { requiresGrad: true });
    const startBlock = rt.rngOffset / 4;
    const y = checkpoint((a, b) => mul(dropout(a, 0.25), b), x, w);
    const afterForward = rt.rngOffset;
    const mask = dropoutRef(new Float32Array(515).fill(1), 0.25, 77, startBlock);
    // Dropped elements are +0 before the product (sign of zero checked too).
    const expectedY = Float32Array.from(data, (v, i) => (mask[i] === 0 ? 0 : Math.fround(v * (mask[i] ?? 0))) * (wData[i] ?? 0));
    expect(Array.from(await y.toArray())).toEqual(Array.from(expectedY));
    backward(y, fromArray(rt, new Float32Array(515).fill(1), [5, 103]));
    // The recomputation drew the forward's counters again and then restored the stream position.
    expect(rt.rngOffset).toBe(afterForward);
    const gx = await gradOf(x).toArray();
    const gw = await gradOf(w).toArray();
    expect(Array.from(gx)).toEqual(Array.from(mask, (m, i) => (m === 0 ? 0 : Math.fround(m * (wData[i] ?? 0)))));
    expect(Array.from(gw)).toEqual(Array.from(data, (v, i) => (mask[i] === 0 ? 0 : Math.fround(v * (mask[i] ?? 0)))));
  });

  it('is the identity for p = 0 or training = false, gradient included', async () => {
    const data = randn(41, 5);
    for (const [p, training] of [
      [0, true],
      [0.5, false],
    ] as const) {
      const at = rt.rngOffset;
      const x = fromArray(rt, data, [41], 'f32', { requiresGrad: true });
      const y = dropout(x, p, { training });
      expect(rt.rngOffset).toBe(at);
      expect(Array.from(await y.toArray())).toEqual(Array.from(data));
      backward(y, fromArray(rt, data, [41]));
      expect(Array.from(await gradOf(x).toArray())).toEqual(Array.from(data));
      const h = fromArray(rt, data, [41], 'f16');
      const yh = dropout(h, p, { training });
      expect(yh.dtype).toBe('f32');
      expect(Array.from(await yh.toArray())).toEqual(Array.from(await h.toArray()));
    }
  });

  it('p = 1 drops everything', async () => {
    const y = await dropout(fromArray(rt, randn(9, 6), [9]), 1).toArray();
    expect(Array.from(y)).toEqual(new Array<number>(9).fill(0));
  });

  it('reads f16 and bf16 input and splits large inputs across bindings', async () => {
    const data = randn(1003, 7);
    for (const dtype of ['f16', 'bf16'] as const) {
      rt.manualSeed(11);
      const x = fromArray(rt, data, [1003], dtype);
      const widened = await x.toArray();
      const y = await withBindingLimit(rt, 1024, async () => {
        const before = rt.totalDispatches;
        const out = dropout(x, 0.4);
        // 2-byte input needs 128-element piece starts; f32 output 64: pieces of 256.
        expect(rt.totalDispatches - before).toBe(4);
        return out.toArray();
      });
      expect(Array.from(y)).toEqual(Array.from(dropoutRef(widened, 0.4, 11, 0)));
    }
  });

  it('rejects a probability outside [0, 1] and integer input', () => {
    const x = fromArray(rt, [1, 2], [2]);
    expect(() => dropout(x, 1.5)).toThrow(UnsupportedError);
    expect(() => dropout(x, NaN)).toThrow(/dropout: unsupported dropout probability/);
    expect(() => dropout(fromArray(rt, [1, 2], [2], 'i32'), 0.1)).toThrow(DTypeError);
  });
});
