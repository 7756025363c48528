// rmsNorm against the float64 reference (odd widths, one row and 129 rows, a 1000-wide row,
// 16-bit storage) and its gradients against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { backward, bf16WordsToF32, f16WordsToF32, f32ToBf16Bits, f32ToF16Bits, fromArray, rmsNorm, type Runtime } from '../../../index.js';
import { assertClose, gradCheck, randn, testRuntime, TOL } from '../../../testing/index.js';
import { rmsNormRef } from './rms-norm.ref.js';

const EPS = 1e-6;

describe('rmsNorm', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('matches the reference on odd shapes', async () => {
    const shapes = [[1, 37], [129, 37], [3, 2, 1000], [4, 1], [5, 257], [2, 3, 64]];
    let seed = 1;
    for (const shape of shapes) {
      const cols = shape[shape.length - 1] ?? 1;
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randn(n, seed++, 2);
      const w = randn(cols, seed++, 0.5).map((v) => v + 1);
      const tx = fromArray(rt, x, shape);
      const tw = fromArray(rt, w, [cols]);
      const y = rmsNorm(tx, tw, EPS);
      expect(y.shape).toEqual(shape);
      expect(y.dtype).toBe('f32');
      assertClose(await y.toArray(), rmsNormRef(x, w, cols, EPS), TOL.f32, `rmsNorm [${shape.join(', ')}]`);
      const plain = rmsNorm(tx, null, 1e-5);
      assertClose(await plain.toArray(), rmsNormRef(x, null, cols, 1e-5), TOL.f32, `rmsNorm no weight [${shape.join(', ')}]`);
      for (const t of [tx, tw, y, plain]) t.dispose();
    }
  });

  it('reads f16 and bf16 weights', async () => {
    const x = randn(7 * 37, 11);
    const w = randn(37, 12).map((v) => v + 1);
    for (const dtype of ['f16', 'bf16'] as const) {
      const tx = fromArray(rt, x, [7, 37]);
      const tw = fromArray(rt, w, [37], dtype);
      const wHost = await tw.toArray();
      const y = rmsNorm(tx, tw, EPS);
      assertClose(await y.toArray(), rmsNormRef(x, wHost, 37, EPS), TOL.f32, `rmsNorm weight ${dtype}`);
      for (const t of [tx, tw, y]) t.dispose();
    }
  });

  it('rounds the normalised value to a 16-bit input dtype before the weight, as the reference model does', async () => {
    const cols = 37;
    const x = randn(9 * cols, 13, 3);
    const w = randn(cols, 14).map((v) => v + 1);
    const cases = [
      { dtype: 'f16' as const, round: (v: number) => f16WordsToF32(Uint16Array.of(f32ToF16Bits(v)))[0] ?? NaN, tol: TOL.f16 },
      // bf16 keeps 8 bits: a value next to a rounding boundary may land one bf16 step away.
      { dtype: 'bf16' as const, round: (v: number) => bf16WordsToF32(Uint16Array.of(f32ToBf16Bits(v)))[0] ?? NaN, tol: { atol: 1e-6, rtol: 2 ** -7 } },
    ];
    for (const c of cases) {
      const tx = fromArray(rt, x, [9, cols], c.dtype);
      const xHost = await tx.toArray();
      const tw = fromArray(rt, w, [cols]);
      const unit = rmsNormRef(xHost, null, cols, EPS);
      const expected = unit.map((h, i) => c.round(h) * (w[i % cols] ?? 0));
      assertClose(await rmsNorm(tx, tw, EPS).toArray(), expected, c.tol, `rmsNorm x ${c.dtype}`);
      tx.dispose();
      tw.dispose();
    }
  });

  for (const [rows, cols] of [[129, 37], [2, 1000], [1, 6]] as const) {
    it(`backward for x and weight matches finite differences [${rows}, ${cols}]`, async () => {
      const x = randn(rows * cols, 21 + cols, 1.5);
      const w = randn(cols, 22 + cols, 0.5).map((v) => v + 1);
      const r = await gradCheck(
        rt,
        (a, b) => rmsNorm(a, b, EPS),
        ([a, b]) => rmsNormRef(a ?? [], b ?? [], cols, EPS),
        [
          { data: x, shape: [rows, cols] },
          { data: w, shape: [cols] },
        ],
      );
      assertClose(r.output, r.expectedOutput, TOL.f32, 'output');
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad x');
      assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, 'grad weight');
    });
  }

  it('backward without a weight', async () => {
    const x = randn(5 * 37, 31);
    const r = await gradCheck(rt, (a) => rmsNorm(a, null, 1e-5), ([a]) => rmsNormRef(a ?? [], null, 37, 1e-5), [{ data: x, shape: [5, 37] }]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad x');
  });

  it('gives the weight no gradient when only x requires grad, and x none when only the weight does', () => {
    const x = fromArray(rt, randn(3 * 37, 41), [3, 37], 'f32', { requiresGrad: true });
    const w = fromArray(rt, randn(37, 42), [37]);
    backward(rmsNorm(x, w, EPS), fromArray(rt, randn(3 * 37, 43), [3, 37]));
    expect(x.grad).not.toBeNull();
    expect(w.grad).toBeNull();
    const x2 = fromArray(rt, randn(3 * 37, 41), [3, 37]);
    const w2 = fromArray(rt, randn(37, 42), [37], 'f32', { requiresGrad: true });
    backward(rmsNorm(x2, w2, EPS), fromArray(rt, randn(3 * 37, 43), [3, 37]));
    expect(x2.grad).toBeNull();
    expect(w2.grad?.shape).toEqual([37]);
  });

  it('names the op and both shapes on a shape mismatch, and rejects integer inputs', () => {
    const x = fromArray(rt, new Float32Array(2 * 37), [2, 37]);
    const w = fromArray(rt, new Float32Array(36), [36]);
    expect(() => rmsNorm(x, w)).toThrow(ShapeMismatchError);
    expect(() => rmsNorm(x, w)).toThrow(/rmsNorm: .*\[2, 37\].*\[36\]/);
    const ids = fromArray(rt, new Int32Array(4), [4], 'i32');
    expect(() => rmsNorm(ids, null)).toThrow(DTypeError);
  });
});
