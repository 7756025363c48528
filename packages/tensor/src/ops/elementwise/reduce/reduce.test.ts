// sum / mean / max / argmax against float64 references over every axis of odd shapes, on the
// subgroup and the workgroup-memory kernels; long-row accuracy; gradients; chunking; errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { argmax, backward, createRuntime, fromArray, max, mean, sum, type Runtime, type Tensor } from '../../../index.js';
import { assertClose, gradCheck, randn, randu, testRuntime, TOL, type Tolerance } from '../../../testing/index.js';
import { maxRef, reducedShape, sumRef } from './reduce.ref.js';
import { gradOf, withBindingLimit } from '../test-helpers.js';

const EPS = 2 ** -23;

/**
 * Tolerance of an f32 sum of R terms: rounding errors of the blocked/tree order grow about like
 * sqrt(R) roundings of values up to max|x|; rtol as for any f32 op.
 */
function sumTol(R: number, x: Iterable<number>): Tolerance {
  let m = 0;
  for (const v of x) m = Math.max(m, Math.abs(v));
  return { atol: Math.max(1e-6, Math.sqrt(R) * m * EPS), rtol: 1e-5 };
}

const cases: { shape: number[]; axes: (number | undefined)[] }[] = [
  { shape: [7, 13], axes: [0, 1, -1, undefined] },
  { shape: [3, 1, 7], axes: [0, 1, 2, undefined] },
  { shape: [1, 5003], axes: [0, 1, undefined] },
  { shape: [3, 1000, 5], axes: [1, undefined] },
  { shape: [2, 5003, 3], axes: [1] },
  { shape: [3, 70001], axes: [undefined] },
  { shape: [1], axes: [0, undefined] },
  { shape: [], axes: [undefined] },
];

const variants = ['default', 'no-subgroups'] as const;

for (const variant of variants) {
  describe(`reductions (${variant})`, () => {
    let rt: Runtime;
    beforeAll(async () => {
      rt = variant === 'default' ? await testRuntime() : await createRuntime({ disableFeatures: ['subgroups'] });
      if (variant === 'no-subgroups') expect(rt.has('subgroups')).toBe(false);
    });
    afterAll(() => {
      if (variant === 'no-subgroups') rt.destroy();
    });

    it('sum and mean match the reference on every axis, with and without keepdim', async () => {
      for (const { shape, axes } of cases) {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = randn(n, n + 3);
        const x = fromArray(rt, data, shape);
        for (const axis of axes) {
          for (const keepdim of [false, true]) {
            const R = axis === undefined ? n : (shape.at(axis) ?? 1);
            const label = `[${shape.join(', ')}] axis ${axis} keepdim ${keepdim}`;
            const s = sum(x, axis, keepdim);
            expect(s.shape).toEqual(reducedShape(shape, axis, keepdim));
            assertClose(await s.toArray(), sumRef(data, shape, axis), sumTol(R, data), `sum ${label}`);
            const m = mean(x, axis, keepdim);
            expect(m.shape).toEqual(s.shape);
            assertClose(await m.toArray(), sumRef(data, shape, axis, true), sumTol(R, data), `mean ${label}`);
            s.dispose();
            m.dispose();
          }
        }
        x.dispose();
      }
    });

    it('max and argmax match the reference, ties going to the first position', async () => {
      for (const { shape, axes } of cases) {
        const n = shape.reduce((a, b) => a * b, 1);
        // Small integers: every row has many ties.
        const data = Float32Array.from(randu(n, n + 5, -4, 4), (v) => Math.floor(v));
        const x = fromArray(rt, data, shape);
        for (const axis of axes) {
          const ref = maxRef(data, shape, axis);
          const label = `[${shape.join(', ')}] axis ${axis}`;
          const v = max(x, axis, true);
          expect(v.shape).toEqual(reducedShape(shape, axis, true));
          expect(Array.from(await v.toArray())).toEqual(Array.from(ref.values));
          const i = argmax(x, axis);
          expect(i.dtype).toBe('i32');
          expect(i.shape).toEqual(reducedShape(shape, axis, false));
          expect(Array.from(await i.toArray()), label).toEqual(Array.from(ref.indices));
          v.dispose();
          i.dispose();
        }
        x.dispose();
      }
    });

    it('max over all elements finds the first maximum across segments', async () => {
      const n = 3 * 4096 + 17;
      const data = randu(n, 3, -1, 1);
      data[9000] = 5;
      data[4100] = 5;
      data[12000] = 5;
      const x = fromArray(rt, data, [n]);
      expect(await max(x).item()).toBe(5);
      expect(await argmax(x).item()).toBe(4100);
    });

    it('max propagates NaN (first NaN wins) and treats -0 and +0 as equal', async () => {
      const data = Float32Array.from([1, NaN, 3, NaN, -0, 0, 0, -0]);
      const x = fromArray(rt, data, [2, 4]);
      const v = await max(x, 1).toArray();
      expect(Number.isNaN(v[0])).toBe(true);
      expect(Object.is(v[1], -0)).toBe(true);
      expect(Array.from(await argmax(x, 1).toArray())).toEqual([1, 0]);
      const s = fromArray(rt, [2, 7, NaN, 1, 9], [5, 1]);
      expect(Number.isNaN(await max(s, 0).item())).toBe(true);
      expect(await argmax(s, 0).item()).toBe(2);
    });

    it('long sums stay accurate on both the row and the strided kernel', async () => {
      // 100003 positive terms: a sequential f32 sum drifts by ~1e-5 relative here; blocked and
      // tree-ordered partial sums stay within a few roundings of the true value.
      const n = 100003;
      const data = randu(n, 17, 0.5, 1);
      let exact = 0;
      let naive = 0;
      for (const v of data) {
        exact += v;
        naive = Math.fround(naive + v);
      }
      const naiveErr = Math.abs(naive - exact) / exact;
      for (const shape of [[1, n], [n, 1]]) {
        const x = fromArray(rt, data, shape);
        const got = await sum(x, shape[0] === 1 ? 1 : 0).item();
        const err = Math.abs(got - exact) / exact;
        expect(err, `[${shape.join(', ')}]`).toBeLessThan(1e-6);
        expect(err).toBeLessThan(naiveErr / 10);
        const all = await sum(x).item();
        expect(Math.abs(all - exact) / exact).toBeLessThan(1e-6);
      }
    });

    it('backward of sum, mean and max matches finite differences', async () => {
      const shape = [3, 5, 4];
      const data = randn(60, 8);
      for (const axis of [0, 1, 2, undefined]) {
        for (const [name, op, ref] of [
          ['sum', (x: Tensor) => sum(x, axis), (x: Float64Array) => sumRef(x, shape, axis)],
          ['mean', (x: Tensor) => mean(x, axis, true), (x: Float64Array) => sumRef(x, shape, axis, true)],
          ['max', (x: Tensor) => max(x, axis), (x: Float64Array) => maxRef(x, shape, axis).values],
        ] as const) {
          const r = await gradCheck(rt, op, ([x]) => ref(x ?? new Float64Array(0)), [{ data, shape }]);
          assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `${name} grad axis ${axis}`);
        }
      }
    });
  });
}

describe('reductions: inputs, limits and errors', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('max sends the gradient to the first of tied maxima only', async () => {
    const x = fromArray(rt, [1, 4, 4, 2, 7, 7], [2, 3], 'f32', { requiresGrad: true });
    backward(max(x, 1), fromArray(rt, [10, 20], [2]));
    expect(Array.from(await gradOf(x).toArray())).toEqual([0, 10, 0, 0, 20, 0]);
  });

  it('reads f16 and bf16 storage', async () => {
    const data = randn(5 * 1031, 12);
    for (const dtype of ['f16', 'bf16'] as const) {
      const x = fromArray(rt, data, [5, 1031], dtype);
      const w = await x.toArray();
      for (const axis of [0, 1, undefined]) {
        const R = axis === undefined ? w.length : axis === 0 ? 5 : 1031;
        assertClose(await sum(x, axis).toArray(), sumRef(w, [5, 1031], axis), sumTol(R, w), `sum ${dtype} axis ${axis}`);
        assertClose(await max(x, axis).toArray(), maxRef(w, [5, 1031], axis).values, { atol: 0, rtol: 0 }, `max ${dtype} axis ${axis}`);
      }
    }
  });

  it('sum over an empty axis is 0, mean NaN, max an error', async () => {
    const x = fromArray(rt, [], [3, 0]);
    expect(Array.from(await sum(x, 1).toArray())).toEqual([0, 0, 0]);
    expect(Array.from(await mean(x, 1).toArray()).every(Number.isNaN)).toBe(true);
    expect((await sum(x, 0).toArray()).length).toBe(0);
    expect(() => max(x, 1)).toThrow(ShapeMismatchError);
    expect(() => max(x, 1)).toThrow(/max: .*non-empty/);
  });

  it('splits rows across bindings when a tensor passes the binding limit', async () => {
    const rowData = randn(70 * 128, 14);
    const allData = randn(70000, 15);
    await withBindingLimit(rt, 4096, async () => {
      // 512-byte rows: 8 per 4096-byte binding.
      const x = fromArray(rt, rowData, [70, 128]);
      const before = rt.totalDispatches;
      const s = sum(x, 1);
      expect(rt.totalDispatches - before).toBe(9);
      assertClose(await s.toArray(), sumRef(rowData, [70, 128], 1), sumTol(128, rowData), 'chunked sum');
      // max's gradient lands on each row's argmax: g[row] there, 0 elsewhere.
      const xg = fromArray(rt, rowData, [70, 128], 'f32', { requiresGrad: true });
      const g = randn(70, 16);
      backward(max(xg, 1), fromArray(rt, g, [70]));
      const expected = new Float32Array(70 * 128);
      maxRef(rowData, [70, 128], 1).indices.forEach((at, row) => (expected[row * 128 + at] = g[row] ?? 0));
      expect(Array.from(await gradOf(xg).toArray())).toEqual(Array.from(expected));
      // Rows too long for one binding cannot be split.
      expect(() => sum(fromArray(rt, new Float32Array(2048), [1, 2048]), 1)).toThrow(UnsupportedError);
    });
    await withBindingLimit(rt, 65536, async () => {
      const x = fromArray(rt, allData, [70000]);
      assertClose([await sum(x).item()], sumRef(allData, [70000]), sumTol(70000, allData), 'chunked sum of all');
      const ref = maxRef(allData, [70000]);
      expect(await argmax(x).item()).toBe(ref.indices[0]);
    });
  });

  it('names the op on a bad axis or dtype', () => {
    const x = fromArray(rt, new Float32Array(6), [2, 3]);
    expect(() => sum(x, 2)).toThrow(ShapeMismatchError);
    expect(() => sum(x, 2)).toThrow(/sum: .*axis in \[-2, 1\].*2/);
    expect(() => mean(x, -3)).toThrow(/mean: /);
    const i = fromArray(rt, [1, 2, 3], [3], 'i32');
    expect(() => max(i)).toThrow(DTypeError);
    expect(() => max(i)).toThrow(/max: expected dtype f32 \| f16 \| bf16, got i32/);
  });
});
