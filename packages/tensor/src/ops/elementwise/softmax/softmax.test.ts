// softmax / logSoftmax against the float64 reference on odd shapes (both reduction kernels),
// stability with large and -inf logits, gradients, 16-bit inputs, chunking, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DTypeError } from '@peft-ts/errors';
import { createRuntime, fromArray, logSoftmax, softmax, type Runtime, type Tensor } from '../../../index.js';
import { assertClose, gradCheck, randn, testRuntime, TOL } from '../../../testing/index.js';
import { softmaxRef } from './softmax.ref.js';
import { withBindingLimit } from '../test-helpers.js';

const ops = [
  ['softmax', softmax, false],
  ['logSoftmax', logSoftmax, true],
] as const;

const shapes: number[][] = [[7, 13], [3, 1, 7], [1, 5003], [1000, 3], [4, 1], [5], []];

for (const variant of ['default', 'no-subgroups'] as const) {
  describe(`softmax (${variant})`, () => {
    let rt: Runtime;
    beforeAll(async () => {
      rt = variant === 'default' ? await testRuntime() : await createRuntime({ disableFeatures: ['subgroups'] });
    });
    afterAll(() => {
      if (variant === 'no-subgroups') rt.destroy();
    });

    for (const [name, op, log] of ops) {
      it(`${name} matches the reference on odd shapes`, async () => {
        for (const shape of shapes) {
          const n = shape.reduce((a, b) => a * b, 1);
          const len = shape.at(-1) ?? 1;
          const data = randn(n, n + 1, 4);
          const x = fromArray(rt, data, shape);
          const y = op(x);
          expect(y.shape).toEqual(shape);
          assertClose(await y.toArray(), softmaxRef(data, len, log), TOL.f32, `${name} [${shape.join(', ')}]`);
          x.dispose();
          y.dispose();
        }
      });

      it(`${name} backward matches finite differences`, async () => {
        for (const shape of [
          [3, 1, 7],
          [2, 1029],
        ]) {
          const n = shape.reduce((a, b) => a * b, 1);
          const len = shape.at(-1) ?? 1;
          const r = await gradCheck(rt, op, ([x]) => softmaxRef(x ?? [], len, log), [{ data: randn(n, 9, 2), shape }]);
          assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `${name} grad [${shape.join(', ')}]`);
        }
      });
    }

    it('is stable for large logits and masks -inf entries to zero', async () => {
      const data = Float32Array.from(randn(2 * 300, 4, 3), (v, i) => (i % 7 === 3 ? -Infinity : v + 1000));
      const x = fromArray(rt, data, [2, 300]);
      const p = await softmax(x).toArray();
      const ref = softmaxRef(data, 300);
      assertClose(p, ref, TOL.f32, 'softmax of logits near 1000');
      for (let i = 3; i < 600; i += 7) expect(p[i]).toBe(0);
      const lp = await logSoftmax(x).toArray();
      assertClose(lp, softmaxRef(data, 300, true), TOL.f32, 'logSoftmax of logits near 1000');
    });

    it('a row that is all -inf gives NaN, as in torch', async () => {
      const x = fromArray(rt, [-Infinity, -Infinity, -Infinity, 0, 1, 2], [2, 3]);
      const p = await softmax(x).toArray();
      expect(Array.from(p.slice(0, 3)).every(Number.isNaN)).toBe(true);
      assertClose(p.slice(3), softmaxRef([0, 1, 2], 3), TOL.f32, 'finite row');
    });
  });
}

describe('softmax: inputs, limits and errors', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('reads f16 and bf16 storage', async () => {
    const data = randn(3 * 517, 5, 3);
    for (const dtype of ['f16', 'bf16'] as const) {
      const x = fromArray(rt, data, [3, 517], dtype);
      const w = await x.toArray();
      for (const [name, op, log] of ops) assertClose(await op(x).toArray(), softmaxRef(w, 517, log), TOL.f32, `${name} ${dtype}`);
    }
  });

  it('splits rows across bindings when a tensor passes the binding limit', async () => {
    const data = randn(37 * 64, 6, 3);
    await withBindingLimit(rt, 1024, async () => {
      // 256-byte rows: 4 per 1024-byte binding.
      for (const [name, op, log] of ops) {
        const before = rt.totalDispatches;
        const y = op(fromArray(rt, data, [37, 64]));
        expect(rt.totalDispatches - before).toBe(10);
        assertClose(await y.toArray(), softmaxRef(data, 64, log), TOL.f32, `chunked ${name}`);
        const r = await gradCheck(rt, (x: Tensor) => op(x), ([x]) => softmaxRef(x ?? [], 64, log), [{ data: data.subarray(0, 9 * 64), shape: [9, 64] }]);
        assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `chunked ${name} grad`);
      }
    });
  });

  it('names the op and the dtype on integer input', () => {
    const x = fromArray(rt, [1, 2, 3], [3], 'i32');
    expect(() => softmax(x)).toThrow(DTypeError);
    expect(() => logSoftmax(x)).toThrow(/logSoftmax: expected dtype f32 \| f16 \| bf16, got i32/);
  });
});
