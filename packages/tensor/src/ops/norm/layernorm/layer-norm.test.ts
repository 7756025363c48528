// layerNorm against the float64 reference (odd widths, 1 and 129 rows, a 1000-wide row, no
// affine parameters, 16-bit parameters) and its gradients against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeMismatchError } from '@peft-ts/errors';
import { backward, fromArray, layerNorm, type Runtime, type Tensor } from '../../../index.js';
import { assertClose, gradCheck, randn, testRuntime, TOL } from '../../../testing/index.js';
import { layerNormRef } from './layer-norm.ref.js';

/** The gradient a backward pass left on `t` (fails the test when there is none). */
function gradOf(t: Tensor): Tensor {
  if (!t.grad) throw new Error(`${t.toString()} has no gradient`);
  return t.grad;
}

const EPS = 1e-5;

describe('layerNorm', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('matches the reference on odd shapes, with and without weight and bias', async () => {
    const shapes = [[1, 37], [129, 37], [3, 2, 1000], [4, 1], [5, 257]];
    let seed = 100;
    for (const shape of shapes) {
      const cols = shape[shape.length - 1] ?? 1;
      const n = shape.reduce((a, b) => a * b, 1);
      // An offset mean exercises the two-pass variance.
      const x = randn(n, seed++, 2).map((v) => v + 3);
      const w = randn(cols, seed++, 0.5).map((v) => v + 1);
      const b = randn(cols, seed++, 0.5);
      const tx = fromArray(rt, x, shape);
      const tw = fromArray(rt, w, [cols]);
      const tb = fromArray(rt, b, [cols]);
      assertClose(await layerNorm(tx, tw, tb, EPS).toArray(), layerNormRef(x, w, b, cols, EPS), TOL.f32, `layerNorm [${shape.join(', ')}]`);
      assertClose(await layerNorm(tx, null, null, EPS).toArray(), layerNormRef(x, null, null, cols, EPS), TOL.f32, `no affine [${shape.join(', ')}]`);
      assertClose(await layerNorm(tx, tw, null, EPS).toArray(), layerNormRef(x, w, null, cols, EPS), TOL.f32, `weight only [${shape.join(', ')}]`);
      for (const t of [tx, tw, tb]) t.dispose();
    }
  });

  it('reads bf16 x and f16 parameters', async () => {
    const x = randn(6 * 37, 120);
    const w = randn(37, 121).map((v) => v + 1);
    const b = randn(37, 122);
    const tx = fromArray(rt, x, [6, 37], 'bf16');
    const tw = fromArray(rt, w, [37], 'f16');
    const tb = fromArray(rt, b, [37], 'f16');
    const expected = layerNormRef(await tx.toArray(), await tw.toArray(), await tb.toArray(), 37, EPS);
    assertClose(await layerNorm(tx, tw, tb, EPS).toArray(), expected, TOL.f32, 'layerNorm 16-bit storage');
  });

  for (const [rows, cols] of [[129, 37], [2, 1000], [1, 6]] as const) {
    it(`backward for x, weight and bias matches finite differences [${rows}, ${cols}]`, async () => {
      const x = randn(rows * cols, 130 + cols, 1.5);
      const w = randn(cols, 131 + cols, 0.5).map((v) => v + 1);
      const b = randn(cols, 132 + cols);
      const r = await gradCheck(
        rt,
        (a, ww, bb) => layerNorm(a, ww, bb, EPS),
        ([a, ww, bb]) => layerNormRef(a ?? [], ww ?? [], bb ?? [], cols, EPS),
        [
          { data: x, shape: [rows, cols] },
          { data: w, shape: [cols] },
          { data: b, shape: [cols] },
        ],
      );
      assertClose(r.output, r.expectedOutput, TOL.f32, 'output');
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad x');
      assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, 'grad weight');
      assertClose(r.grads[2] ?? [], r.expectedGrads[2] ?? [], TOL.grad, 'grad bias');
    });
  }

  it('backward without affine parameters', async () => {
    const x = randn(5 * 37, 140);
    const r = await gradCheck(rt, (a) => layerNorm(a, null, null, EPS), ([a]) => layerNormRef(a ?? [], null, null, 37, EPS), [{ data: x, shape: [5, 37] }]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad x');
  });

  it('computes only the gradients asked for', async () => {
    const x = fromArray(rt, randn(3 * 37, 150), [3, 37]);
    const w = fromArray(rt, randn(37, 151), [37]);
    const b = fromArray(rt, randn(37, 152), [37], 'f32', { requiresGrad: true });
    const g = randn(3 * 37, 153);
    backward(layerNorm(x, w, b, EPS), fromArray(rt, g, [3, 37]));
    expect(x.grad).toBeNull();
    expect(w.grad).toBeNull();
    const expectedDb = new Float64Array(37);
    g.forEach((v, i) => (expectedDb[i % 37] = (expectedDb[i % 37] ?? 0) + v));
    assertClose(await gradOf(b).toArray(), expectedDb, TOL.f32, 'grad bias');
  });

  it('names the op and both shapes on a shape mismatch', () => {
    const x = fromArray(rt, new Float32Array(2 * 37), [2, 37]);
    const b = fromArray(rt, new Float32Array(38), [38]);
    expect(() => layerNorm(x, null, b)).toThrow(ShapeMismatchError);
    expect(() => layerNorm(x, null, b)).toThrow(/layerNorm: .*bias.*\[2, 37\].*\[38\]/);
  });
});
