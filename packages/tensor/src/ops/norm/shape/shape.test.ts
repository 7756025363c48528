// Shape ops against plain references on odd shapes in every storage dtype (copies are
// bit-exact), views sharing storage, and gradients against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import {
  backward,
  broadcastTo,
  concat,
  contiguous,
  expand,
  fromArray,
  narrow,
  permute,
  reshape,
  split,
  transpose,
  type DType,
  type Runtime,
  type Tensor,
} from '../../../index.js';
import { assertClose, gradCheck, randn, testRuntime, TOL } from '../../../testing/index.js';
import { concatRef, expandRef, narrowRef, permuteRef } from './shape.ref.js';

/** The gradient a backward pass left on `t` (fails the test when there is none). */
function gradOf(t: Tensor): Tensor {
  if (!t.grad) throw new Error(`${t.toString()} has no gradient`);
  return t.grad;
}

const DTYPES: DType[] = ['f32', 'f16', 'bf16', 'i32'];

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('shape ops', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  /** Host values exactly representable in `dtype`, and the tensor holding them. */
  async function input(shape: readonly number[], dtype: DType, seed: number): Promise<{ t: Tensor; host: number[] }> {
    const n = numel(shape);
    const data = dtype === 'i32' ? Int32Array.from(randn(n, seed), (v) => Math.round(v * 1000)) : randn(n, seed);
    const t = fromArray(rt, data, shape, dtype);
    return { t, host: Array.from(await t.toArray()) };
  }

  it('reshape is a view on the same storage, infers -1, and reshapes the gradient back', async () => {
    const x = fromArray(rt, randn(2 * 3 * 5, 500), [2, 3, 5]);
    const y = reshape(x, [5, -1]);
    expect(y.shape).toEqual([5, 6]);
    expect(y.storage).toBe(x.storage);
    expect(Array.from(await y.toArray())).toEqual(Array.from(await x.toArray()));
    const r = await gradCheck(rt, (a) => reshape(a, [-1, 2, 3]), ([a]) => a ?? [], [{ data: randn(30, 501), shape: [5, 6] }]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad reshape');
    expect(() => reshape(x, [4, -1])).toThrow(/reshape: .*30 elements \(from \[2, 3, 5\]\).*\[4, -1\]/);
    expect(() => reshape(x, [-1, -1, 30])).toThrow(ShapeMismatchError);
  });

  it('permute and transpose move every dtype bit-exactly at rank 6', async () => {
    const shape = [2, 3, 1, 5, 4, 3];
    const perm = [5, 0, 3, 1, 4, 2];
    for (const [k, dtype] of DTYPES.entries()) {
      const { t, host } = await input(shape, dtype, 510 + k);
      const y = permute(t, perm);
      expect(y.shape).toEqual([3, 2, 5, 3, 4, 1]);
      expect(y.dtype).toBe(dtype);
      expect(Array.from(await y.toArray())).toEqual(permuteRef(host, shape, perm));
      const z = transpose(t, -1, 1);
      expect(Array.from(await z.toArray())).toEqual(permuteRef(host, shape, [0, 5, 2, 3, 4, 1]));
    }
  });

  it('permute backward applies the inverse permutation', async () => {
    const shape = [3, 1, 4, 5];
    const perm = [2, 0, 3, 1];
    const r = await gradCheck(rt, (a) => permute(a, perm), ([a]) => permuteRef(a ?? [], shape, perm), [{ data: randn(60, 520), shape }]);
    assertClose(r.output, r.expectedOutput, TOL.f32, 'permute output');
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad permute');
  });

  it('expand repeats size-1 dims and sums the gradient back', async () => {
    const shape = [3, 1, 5];
    const target = [2, 3, 4, 5];
    for (const [k, dtype] of DTYPES.entries()) {
      const { t, host } = await input(shape, dtype, 530 + k);
      expect(Array.from(await expand(t, target).toArray())).toEqual(expandRef(host, shape, target));
    }
    const r = await gradCheck(rt, (a) => broadcastTo(a, [2, 3, 4, -1]), ([a]) => expandRef(a ?? [], shape, target), [
      { data: randn(15, 531), shape },
    ]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad expand');
    const x = fromArray(rt, new Float32Array(15), shape);
    expect(() => expand(x, [3, 2, 4])).toThrow(/expand: .*\[3, 1, 5\].*\[3, 2, 4\]/);
    // An output past one storage binding is refused up front, naming the op.
    const huge = Math.ceil(rt.maxBindingBytes / 4 / 15) + 1;
    expect(() => expand(x, [huge, 3, 1, 5])).toThrow(UnsupportedError);
    expect(() => expand(x, [huge, 3, 1, 5])).toThrow(/expand: unsupported tensor size for one storage binding/);
  });

  it('narrow copies a slice of any axis, or views it when it starts on a bindable offset', async () => {
    for (const [k, dtype] of DTYPES.entries()) {
      const { t, host } = await input([3, 7, 5], dtype, 540 + k);
      const y = narrow(t, 1, 2, 4);
      expect(y.storage).not.toBe(t.storage);
      expect(Array.from(await y.toArray())).toEqual(narrowRef(host, [3, 7, 5], 1, 2, 4));
      expect(Array.from(await narrow(t, -1, 4, 1).toArray())).toEqual(narrowRef(host, [3, 7, 5], 2, 4, 1));
    }
    // Rows of 37 f32 are 148 bytes: row 64 starts at 9472 = 37 * 256 bytes, row 3 does not.
    const { t, host } = await input([129, 37], 'f32', 545);
    const view = narrow(t, 0, 64, 65);
    expect(view.storage).toBe(t.storage);
    expect(view.byteOffset).toBe(9472);
    expect(Array.from(await view.toArray())).toEqual(narrowRef(host, [129, 37], 0, 64, 65));
    const copy = narrow(t, 0, 3, 5);
    expect(copy.storage).not.toBe(t.storage);
    expect(Array.from(await copy.toArray())).toEqual(narrowRef(host, [129, 37], 0, 3, 5));
    expect(() => narrow(t, 1, 30, 8)).toThrow(/narrow: .*size 37.*\[129, 37\].*\[30, 8\]/);
  });

  it('narrow backward places the gradient in the slice (copy and view)', async () => {
    for (const [axis, start, len, shape] of [
      [1, 2, 4, [3, 7, 5]],
      [0, 64, 65, [129, 4]],
    ] as const) {
      const r = await gradCheck(rt, (a) => narrow(a, axis, start, len), ([a]) => narrowRef(a ?? [], shape, axis, start, len), [{ data: randn(numel(shape), 550), shape }]);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `grad narrow axis ${axis}`);
    }
  });

  it('concat joins many tensors (more than one dispatch holds) in every dtype, with odd inner sizes', async () => {
    const lengths = [2, 1, 3, 0, 4, 1];
    for (const [k, dtype] of DTYPES.entries()) {
      const parts = await Promise.all(lengths.map((len, i) => input([2, len, 3], dtype, 560 + 10 * k + i)));
      const y = concat(
        parts.map((p) => p.t),
        1,
      );
      expect(y.shape).toEqual([2, 11, 3]);
      const expected = concatRef(
        parts.map((p, i) => ({ data: p.host, shape: [2, lengths[i] ?? 0, 3] })),
        1,
      );
      expect(Array.from(await y.toArray())).toEqual(expected);
    }
  });

  it('split then concat in another order: gradients flow back through both', async () => {
    const shape = [3, 7, 2];
    const r = await gradCheck(
      rt,
      (a) => {
        const [p, q, s] = split(a, [2, 4, 1], 1) as [Tensor, Tensor, Tensor];
        return concat([s, p, q], 1);
      },
      ([a]) => {
        const x = a ?? [];
        const parts = [
          { data: narrowRef(x, shape, 1, 6, 1), shape: [3, 1, 2] },
          { data: narrowRef(x, shape, 1, 0, 2), shape: [3, 2, 2] },
          { data: narrowRef(x, shape, 1, 2, 4), shape: [3, 4, 2] },
        ];
        return concatRef(parts, 1);
      },
      [{ data: randn(42, 570), shape }],
    );
    assertClose(r.output, r.expectedOutput, TOL.f32, 'split/concat output');
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad split/concat');
    const x = fromArray(rt, new Float32Array(7), [7]);
    expect(split(x, 3).map((p) => p.shape[0])).toEqual([3, 3, 1]);
    expect(() => split(x, [3, 3])).toThrow(/split: .*\(7\).*\[7\].*\[3, 3\]/);
  });

  it('concat backward gives each input its slice, and only inputs that need one', async () => {
    const a = fromArray(rt, randn(6, 580), [2, 3], 'f32', { requiresGrad: true });
    const b = fromArray(rt, randn(4, 581), [2, 2]);
    const c = fromArray(rt, randn(2, 582), [2, 1], 'f32', { requiresGrad: true });
    const g = randn(12, 583);
    backward(concat([a, b, c], -1), fromArray(rt, g, [2, 6]));
    expect(b.grad).toBeNull();
    expect(Array.from(await gradOf(a).toArray())).toEqual(narrowRef(g, [2, 6], 1, 0, 3));
    expect(Array.from(await gradOf(c).toArray())).toEqual(narrowRef(g, [2, 6], 1, 5, 1));
    expect(() => concat([a, fromArray(rt, new Float32Array(6), [3, 2])], 1)).toThrow(/concat: .*dim 1.*\[2, 3\], \[3, 2\]/);
    expect(() => concat([a, fromArray(rt, new Float32Array(6), [2, 3], 'f16')], 1)).toThrow(DTypeError);
  });

  it('contiguous copies into new storage and passes the gradient through', async () => {
    const x = fromArray(rt, randn(37, 590), [37], 'bf16');
    const y = contiguous(x);
    expect(y.storage).not.toBe(x.storage);
    expect(Array.from(await y.toArray())).toEqual(Array.from(await x.toArray()));
    const r = await gradCheck(rt, (a) => contiguous(a), ([a]) => a ?? [], [{ data: randn(37, 591), shape: [37] }]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad contiguous');
  });

  it('rejects bad permutations, ranks above 6 and u8 data', () => {
    const x = fromArray(rt, new Float32Array(6), [2, 3]);
    expect(() => permute(x, [0, 0])).toThrow(/permute: .*\[2, 3\].*\[0, 0\]/);
    const big = fromArray(rt, new Float32Array(2), [1, 1, 1, 1, 1, 1, 2]);
    expect(() => permute(big, [6, 5, 4, 3, 2, 1, 0])).toThrow(/permute: .*rank <= 6/);
    const bytes = fromArray(rt, new Uint8Array(4), [2, 2], 'u8');
    expect(() => transpose(bytes, 0, 1)).toThrow(DTypeError);
  });
});
