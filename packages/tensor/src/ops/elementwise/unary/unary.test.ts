// Unary ops, erf, gelu and siluMul against float64 references on odd shapes, their gradients
// against finite differences, 16-bit inputs, chunked dispatch, and error messages.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { backward, erf, exp, fromArray, gelu, log, neg, relu, rsqrt, scale, sigmoid, silu, siluMul, sqrt, square, tanh, type Runtime, type Tensor } from '../../../index.js';
import { assertClose, gradCheck, numericGrads, randn, randu, testRuntime, TOL } from '../../../testing/index.js';
import { erf64, erfc64, siluMulRef, unaryRef, type UnaryRefOp } from './unary.ref.js';
import { gradOf, withBindingLimit } from '../test-helpers.js';

interface Case {
  op: UnaryRefOp;
  fn: (x: Tensor) => Tensor;
  /** Input domain: 'pos' draws from [0.05, 4), 'wide' from N(0, 9), default N(0, 4). */
  domain?: 'pos' | 'wide';
  alpha?: number;
}

const cases: Case[] = [
  { op: 'scale', fn: (x) => scale(x, -2.5), alpha: -2.5 },
  { op: 'neg', fn: neg },
  { op: 'exp', fn: exp },
  { op: 'log', fn: log, domain: 'pos' },
  { op: 'sqrt', fn: sqrt, domain: 'pos' },
  { op: 'rsqrt', fn: rsqrt, domain: 'pos' },
  { op: 'square', fn: square },
  { op: 'sigmoid', fn: sigmoid, domain: 'wide' },
  { op: 'silu', fn: silu, domain: 'wide' },
  { op: 'tanh', fn: tanh, domain: 'wide' },
  { op: 'relu', fn: relu },
  { op: 'erf', fn: erf, domain: 'wide' },
  { op: 'gelu', fn: (x) => gelu(x), domain: 'wide' },
  { op: 'gelu_tanh', fn: (x) => gelu(x, { approximate: 'tanh' }), domain: 'wide' },
];

const shapes: number[][] = [[7, 13], [3, 1, 7], [1, 5003], [1], []];

function draw(domain: Case['domain'], n: number, seed: number): Float32Array {
  if (domain === 'pos') return randu(n, seed, 0.05, 4);
  return randn(n, seed, domain === 'wide' ? 3 : 2);
}

/** Shrinks the runtime's per-binding limit for the duration of fn, so small tensors take the chunked path. */

describe('unary ops', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  for (const c of cases) {
    it(`${c.op} matches the float64 reference on odd shapes`, async () => {
      for (const shape of shapes) {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = draw(c.domain, n, 11 + n);
        const x = fromArray(rt, data, shape);
        const y = c.fn(x);
        expect(y.shape).toEqual(shape);
        expect(y.dtype).toBe('f32');
        assertClose(await y.toArray(), unaryRef(c.op, data, c.alpha), TOL.f32, `${c.op} [${shape.join(', ')}]`);
        x.dispose();
        y.dispose();
      }
    });

    it(`${c.op} backward matches finite differences`, async () => {
      const shape = [3, 4, 5];
      const data = draw(c.domain, 60, 5);
      const r = await gradCheck(rt, c.fn, ([x]) => unaryRef(c.op, x ?? [], c.alpha), [{ data, shape }]);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `${c.op} grad`);
    });
  }

  it('the float64 erf reference matches known values', () => {
    // Values from mpmath at 30 digits, rounded to float64.
    const known: [number, number][] = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3.5, 0.9999992569016276],
    ];
    for (const [x, v] of known) {
      expect(Math.abs(erf64(x) - v)).toBeLessThan(4e-16);
      expect(Math.abs(erf64(-x) + v)).toBeLessThan(4e-16);
    }
    const tails: [number, number][] = [
      [3, 2.209049699858544e-5],
      [5, 1.537459794428035e-12],
      [8, 1.1224297172982926e-29],
    ];
    for (const [x, v] of tails) expect(Math.abs(erfc64(x) - v) / v).toBeLessThan(1e-13);
  });

  it('erf is accurate to f32 round-off over [-6, 6]', async () => {
    const n = 24001;
    const xs = Float32Array.from({ length: n }, (_, i) => -6 + (12 * i) / (n - 1));
    const t = fromArray(rt, xs, [n]);
    const got = await erf(t).toArray();
    const ref = Float64Array.from(xs, erf64);
    // About 2.5 ulp of values near 1 (ulp 6e-8 below 1): the polynomial fits are exact to ~1e-9,
    // the rest is f32 rounding of the Horner steps and of exp.
    assertClose(got, ref, { atol: 2e-7, rtol: 0 }, 'erf absolute');
    // Near zero erf(x) ~ 1.13 x: the error must be relative there, not just absolute.
    const small = Array.from(xs.keys()).filter((i) => Math.abs(xs[i] ?? 1) < 0.1);
    assertClose(small.map((i) => got[i] ?? NaN), small.map((i) => ref[i] ?? NaN), { atol: 0, rtol: 3e-7 }, 'erf relative near 0');
  });

  it('exact gelu keeps its relative accuracy in the negative tail', async () => {
    const n = 701;
    const xs = Float32Array.from({ length: n }, (_, i) => -8 + (7 * i) / (n - 1));
    const got = await gelu(fromArray(rt, xs, [n])).toArray();
    // erfc is computed directly for x < 0 (no 1 + erf cancellation); exp(-a^2) with a^2 rounded to
    // f32 bounds the relative error by about a^2 * 2^-24 <= 2e-6 at a = 8 / sqrt 2.
    assertClose(got, unaryRef('gelu', xs), { atol: 0, rtol: 1e-5 }, 'gelu tail');
  });

  it('reads f16 and bf16 storage', async () => {
    const data = randn(37, 3, 2);
    for (const dtype of ['f16', 'bf16'] as const) {
      const x = fromArray(rt, data, [37], dtype);
      const widened = await x.toArray();
      for (const c of cases.filter((k) => k.domain !== 'pos')) {
        assertClose(await c.fn(x).toArray(), unaryRef(c.op, widened, c.alpha), TOL.f32, `${c.op} ${dtype}`);
      }
    }
  });

  it('backward reads a saved f16 or bf16 input', async () => {
    const data = randn(29, 4, 2);
    const g = randn(29, 9);
    for (const dtype of ['f16', 'bf16'] as const) {
      for (const c of cases.filter((k) => k.domain !== 'pos' && k.op !== 'scale' && k.op !== 'neg')) {
        const x = fromArray(rt, data, [29], dtype, { requiresGrad: true });
        const widened = await x.toArray();
        backward(c.fn(x), fromArray(rt, g, [29]));
        const [expected] = numericGrads(([v]) => unaryRef(c.op, v ?? [], c.alpha), [widened], g);
        assertClose(await gradOf(x).toArray(), expected ?? [], TOL.grad, `${c.op} grad from ${dtype}`);
        x.dispose();
      }
    }
  });

  it('splits tensors larger than one binding into aligned pieces', async () => {
    const data = randn(5003, 8, 3);
    await withBindingLimit(rt, 4096, async () => {
      for (const dtype of ['f32', 'f16'] as const) {
        const x = fromArray(rt, data, [5003], dtype);
        const widened = await x.toArray();
        const before = rt.totalDispatches;
        const y = gelu(x);
        // 4096-byte bindings hold 1024 elements (a multiple of the 256-byte offset alignment).
        expect(rt.totalDispatches - before).toBe(5);
        assertClose(await y.toArray(), unaryRef('gelu', widened), TOL.f32, `chunked gelu ${dtype}`);
      }
      const r = await gradCheck(rt, (x) => tanh(x), ([x]) => unaryRef('tanh', x ?? []), [{ data: randn(3001, 4), shape: [3001] }]);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'chunked tanh grad');
    });
  });

  it('siluMul matches silu(gate) * up on odd shapes', async () => {
    for (const shape of [[5, 1, 37], [1, 5003], [3, 1, 7]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const a = randn(n, 21, 3);
      const b = randn(n, 22);
      const out = siluMul(fromArray(rt, a, shape), fromArray(rt, b, shape));
      expect(out.shape).toEqual(shape);
      assertClose(await out.toArray(), siluMulRef(a, b), TOL.f32, `siluMul [${shape.join(', ')}]`);
    }
    const a = randn(64, 23, 3);
    const b = randn(64, 24);
    const ta = fromArray(rt, a, [64], 'bf16');
    const tb = fromArray(rt, b, [64], 'f16');
    assertClose(await siluMul(ta, tb).toArray(), siluMulRef(await ta.toArray(), await tb.toArray()), TOL.f32, 'siluMul bf16 x f16');
  });

  it('siluMul backward matches finite differences for either or both inputs', async () => {
    const shape = [3, 1, 7];
    const a = randn(21, 31, 3);
    const b = randn(21, 32);
    for (const [ra, rb] of [
      [true, true],
      [true, false],
      [false, true],
    ] as const) {
      const r = await gradCheck(rt, (x, y) => siluMul(x, y), ([x, y]) => siluMulRef(x ?? [], y ?? []), [
        { data: a, shape, requiresGrad: ra },
        { data: b, shape, requiresGrad: rb },
      ]);
      if (ra) assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'siluMul grad gate');
      else expect(r.grads[0]).toBeNull();
      if (rb) assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, 'siluMul grad up');
      else expect(r.grads[1]).toBeNull();
    }
  });

  it('names the op and both shapes or the dtype on bad input', () => {
    const a = fromArray(rt, new Float32Array(6), [2, 3]);
    const b = fromArray(rt, new Float32Array(8), [2, 4]);
    expect(() => siluMul(a, b)).toThrow(ShapeMismatchError);
    expect(() => siluMul(a, b)).toThrow(/siluMul: .*\[2, 3\].*\[2, 4\]/);
    const i = fromArray(rt, [1, 2, 3], [3], 'i32');
    expect(() => exp(i)).toThrow(DTypeError);
    expect(() => exp(i)).toThrow(/exp: expected dtype f32 \| f16 \| bf16, got i32/);
    expect(() => gelu(a, { approximate: 'quick' as 'tanh' })).toThrow(UnsupportedError);
  });
});
