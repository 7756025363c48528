// add/sub/mul/div against the float64 reference (odd shapes, broadcasting) and their gradients
// against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeMismatchError } from '@peft-ts/errors';
import { add, div, fromArray, mul, sub, type Runtime } from '../../index.js';
import { assertClose, gradCheck, randn, randu, testRuntime, TOL } from '../../testing/index.js';
import { binaryRef } from './binary.ref.js';

const ops = { add, sub, mul, div } as const;
type Op = keyof typeof ops;

const shapes: [number[], number[]][] = [
  [[7, 13], [7, 13]],
  [[3, 1, 5], [4, 1]],
  [[1], [2, 3, 5]],
  [[2, 3, 5], []],
  [[1000, 3], [1, 3]],
  [[5, 1, 1, 2], [1, 7, 3, 1]],
];

describe('binary ops', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  for (const op of Object.keys(ops) as Op[]) {
    it(`${op} matches the reference on broadcast shapes`, async () => {
      for (const [sa, sb] of shapes) {
        const na = sa.reduce((x, y) => x * y, 1);
        const nb = sb.reduce((x, y) => x * y, 1);
        const a = randn(na, 1);
        // Keep divisors away from zero so the relative tolerance is meaningful.
        const b = op === 'div' ? randu(nb, 2, 0.5, 2) : randn(nb, 2);
        const ta = fromArray(rt, a, sa);
        const tb = fromArray(rt, b, sb);
        const out = ops[op](ta, tb);
        const got = await out.toArray();
        assertClose(got, binaryRef(op, a, sa, b, sb), TOL.f32, `${op} [${sa.join(", ")}] x [${sb.join(", ")}]`);
        for (const t of [ta, tb, out]) t.dispose();
      }
    });

    it(`${op} backward matches finite differences with broadcasting`, async () => {
      const sa = [3, 4, 5];
      const sb = [4, 1];
      const a = randn(60, 3);
      const b = op === 'div' ? randu(4, 4, 0.5, 2) : randn(4, 4);
      const r = await gradCheck(rt, (x, y) => ops[op](x, y), ([x, y]) => binaryRef(op, x ?? [], sa, y ?? [], sb), [
        { data: a, shape: sa },
        { data: b, shape: sb },
      ]);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `${op} grad a`);
      assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, `${op} grad b`);
    });
  }

  it('takes a number as the second operand', async () => {
    const x = fromArray(rt, [1, 2, 3], [3]);
    const y = mul(add(x, 1), 0.5);
    expect(Array.from(await y.toArray())).toEqual([1, 1.5, 2]);
  });

  it('reads f16 and bf16 storage', async () => {
    const a = randn(33, 5);
    const b = randn(33, 6);
    for (const dtype of ['f16', 'bf16'] as const) {
      const ta = fromArray(rt, a, [33], dtype);
      const tb = fromArray(rt, b, [33], 'f32');
      const ha = await ta.toArray();
      const out = await add(ta, tb).toArray();
      assertClose(out, binaryRef('add', ha, [33], b, [33]), TOL.f32, `add ${dtype}`);
    }
  });

  it('names the op and both shapes on a shape mismatch', () => {
    const a = fromArray(rt, new Float32Array(6), [2, 3]);
    const b = fromArray(rt, new Float32Array(8), [2, 4]);
    expect(() => add(a, b)).toThrow(ShapeMismatchError);
    expect(() => add(a, b)).toThrow(/add: .*\[2, 3\].*\[2, 4\]/);
  });
});
