// The fused 4-bit linear against a float64 product with the CPU-dequantized weight (odd shapes,
// rows that cross blocks, bias, batched leading dims, both tiles, split dispatches, f16
// activations and compute), its input gradient against finite differences, and the
// bitsandbytes Linear4bit fixtures.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { SafetensorsFile, f16ToF32, f32ToF16 } from '@peft-ts/safetensors/node';
import { backward, fromArray, linear, tidy, type Runtime, type Tensor } from '@peft-ts/tensor';
import { TOL, assertClose, gradCheck, randn, testRuntime } from '@peft-ts/tensor/testing';
import { dequantize, quantize, readQuantized4bit, type Quantized4bit, type QuantType } from '../index.js';
import { BNB } from '../test-fixtures.js';
import { Linear4bit, dequantize4bitGpu, disposeQuantized4bit, linear4bit, uploadQuantized4bit, type Linear4bitOptions } from './index.js';

const EPS32 = 2 ** -24;

/** y = x W^T + b in float64, and for each output the sum of |x w| that bounds its f32 round-off. */
function reference(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, M: number, N: number, K: number) {
  const y = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? (bias[n] ?? 0) : 0;
      let a = Math.abs(s);
      for (let k = 0; k < K; k++) {
        const p = (x[m * K + k] ?? 0) * (w[n * K + k] ?? 0);
        s += p;
        a += Math.abs(p);
      }
      y[m * N + n] = s;
      mag[m * N + n] = a;
    }
  }
  return { y, mag };
}

/**
 * Every output within the worst-case f32 round-off of a K-term sum computed with fused
 * multiply-adds plus the bias add, (K + 2) * 2^-24 * sum |terms|, plus `extra` * sum |terms|
 * for operands rounded before multiplying (f16 compute).
 */
function expectWithinRoundoff(got: ArrayLike<number>, want: Float64Array, mag: Float64Array, K: number, label: string, extra = 0): void {
  let worst = 0;
  let message = `${label}: ok`;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs((got[i] ?? NaN) - (want[i] ?? 0));
    const bound = ((K + 2) * EPS32 + extra) * (mag[i] ?? 0) + 1e-30;
    const ratio = err / bound;
    if (!(ratio <= worst)) {
      worst = Number.isNaN(ratio) ? Infinity : ratio;
      message = `${label}: output ${i} got ${got[i]}, want ${want[i]} (error ${err.toExponential(3)}, bound ${bound.toExponential(3)})`;
    }
  }
  expect(worst, message).toBeLessThanOrEqual(1);
}

interface Case {
  label: string;
  lead: number[];
  N: number;
  K: number;
  type: QuantType;
  blocksize: number;
  dq: boolean;
  bias: boolean;
  options?: Linear4bitOptions;
}

// Kernels each case runs with: 'auto' picks the few-rows kernel for up to 8 rows with
// in-features a multiple of 8, the tiled kernel otherwise (on a software adapter, past 8 rows,
// the decoded weight times the subgroup-broadcast matmul).
const CASES: (Case & { kernels: NonNullable<Linear4bitOptions['kernel']>[] })[] = [
  { label: 'odd in-features (unaligned), rows crossing blocks', lead: [2, 3], N: 29, K: 37, type: 'nf4', blocksize: 32, dq: true, bias: true, kernels: ['auto'] },
  { label: 'aligned, fp4, plain absmax', lead: [5], N: 70, K: 96, type: 'fp4', blocksize: 64, dq: false, bias: true, kernels: ['gemv', 'tiled-64'] },
  { label: 'one row', lead: [1], N: 33, K: 64, type: 'nf4', blocksize: 64, dq: true, bias: false, kernels: ['gemv', 'tiled-64'] },
  { label: 'eight rows', lead: [2, 4], N: 21, K: 136, type: 'fp4', blocksize: 32, dq: true, bias: true, kernels: ['gemv', 'tiled-128'] },
  { label: 'long reduction', lead: [3], N: 17, K: 1040, type: 'nf4', blocksize: 128, dq: true, bias: true, kernels: ['gemv', 'tiled-64'] },
  { label: 'large tile, partial tiles', lead: [130], N: 140, K: 72, type: 'nf4', blocksize: 64, dq: true, bias: true, kernels: ['tiled-128', 'auto'] },
  { label: 'split dispatches', lead: [4, 75], N: 40, K: 64, type: 'fp4', blocksize: 64, dq: true, bias: true, kernels: ['auto', 'tiled-64'], options: { maxBindingBytes: 16384 } },
];

function makeWeight(c: Case, seed: number): { q: Quantized4bit; w: Float32Array } {
  const q = quantize(randn(c.N * c.K, seed, 0.05), { type: c.type, blocksize: c.blocksize, doubleQuant: c.dq, shape: [c.N, c.K] });
  return { q, w: dequantize(q) };
}

describe('linear4bit', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it.each(CASES.map((c) => [c.label, c] as const))('%s: within f32 round-off of x dequant(W)^T', async (_, c) => {
    const { q, w } = makeWeight(c, 7);
    const M = c.lead.reduce((a, b) => a * b, 1);
    const xs = randn(M * c.K, 8);
    const bs = c.bias ? randn(c.N, 9, 0.1) : null;
    const qt = uploadQuantized4bit(rt, q);
    const x = fromArray(rt, xs, [...c.lead, c.K]);
    const b = bs ? fromArray(rt, bs, [c.N]) : null;
    const ref = reference(xs, w, bs, M, c.N, c.K);
    for (const kernel of c.kernels) {
      const y = linear4bit(x, qt, b, { ...c.options, kernel });
      expect(y.shape).toEqual([...c.lead, c.N]);
      expectWithinRoundoff(await y.toArray(), ref.y, ref.mag, c.K, `${c.label} (${kernel})`);
      y.dispose();
    }
    // The same product through the dense path: dequantize on the GPU, then @peft-ts/tensor's linear.
    const dense = dequantize4bitGpu(qt);
    const yd = linear(x, dense, b);
    expectWithinRoundoff(await yd.toArray(), ref.y, ref.mag, c.K, `${c.label} (dense path)`);
    for (const t of [x, yd, dense, ...(b ? [b] : [])]) t.dispose();
    disposeQuantized4bit(qt);
  });

  it.each(['gemv', 'tiled-64'] as const)('%s: reads f16 and bf16 activations and computes in f16 when asked', async (kernel) => {
    const c: Case = { label: 'f16', lead: [7], N: 50, K: 80, type: 'nf4', blocksize: 64, dq: true, bias: true };
    const { q, w } = makeWeight(c, 11);
    const qt = uploadQuantized4bit(rt, q);
    const words = f32ToF16(randn(7 * 80, 12));
    const xs = f16ToF32(words);
    const bs = randn(50, 13, 0.1);
    const b = fromArray(rt, bs, [50]);
    const x16 = fromArray(rt, words, [7, 80], 'f16');
    const ref = reference(xs, w, bs, 7, 50, 80);
    const xbf = fromArray(rt, xs, [7, 80], 'bf16');
    const xsBf = (await xbf.toArray()) as Float32Array;
    const refBf = reference(xsBf, w, bs, 7, 50, 80);
    {
      const y = linear4bit(x16, qt, b, { kernel });
      expectWithinRoundoff(await y.toArray(), ref.y, ref.mag, 80, `f16 storage (${kernel})`);
      const ybf = linear4bit(xbf, qt, b, { kernel });
      expectWithinRoundoff(await ybf.toArray(), refBf.y, refBf.mag, 80, `bf16 storage (${kernel})`);
      for (const t of [y, ybf]) t.dispose();
      if (rt.has('shader-f16')) {
        // Weights rounded to f16 (WGSL may round either way: one f16 ulp, 2^-10 relative) move
        // each term by that much; the f16 products are exact in f32.
        const yh = linear4bit(x16, qt, b, { computeDtype: 'f16', kernel });
        expectWithinRoundoff(await yh.toArray(), ref.y, ref.mag, 80, `f16 compute (${kernel})`, 2 ** -10);
        yh.dispose();
      }
    }
    for (const t of [x16, xbf, b]) t.dispose();
    disposeQuantized4bit(qt);
  });

  it.each([
    ['aligned', 40, 48, true],
    ['unaligned, no bias', 23, 45, false],
  ] as const)('dx (%s) matches finite differences of the float64 reference', async (_, N, K, withBias) => {
    const c: Case = { label: 'grad', lead: [3, 2], N, K, type: 'nf4', blocksize: 32, dq: true, bias: withBias };
    const { q, w } = makeWeight(c, 15);
    const qt = uploadQuantized4bit(rt, q);
    const bs = randn(N, 16, 0.1);
    const bias = withBias ? fromArray(rt, bs, [N], 'f32', { requiresGrad: true }) : null;
    const r = await gradCheck(
      rt,
      (x) => linear4bit(x, qt, bias),
      ([x]) => reference(x ?? new Float64Array(), w, withBias ? bs : null, 6, N, K).y,
      [{ data: randn(6 * K, 17), shape: [3, 2, K] }],
    );
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'dx');
    if (bias) {
      // The bias gradient is the column sum of the output gradient gradCheck drew.
      const g = randn(6 * N, 7);
      const want = Float64Array.from({ length: N }, (_, n) => [0, 1, 2, 3, 4, 5].reduce((s, m) => s + (g[m * N + n] ?? 0), 0));
      assertClose((await bias.grad?.toArray()) ?? [], want, TOL.f32, 'dbias');
      bias.dispose();
    }
    disposeQuantized4bit(qt);
  });

  it('Linear4bit is a frozen layer: no parameters, gradient to x only, owns its weight', async () => {
    const c: Case = { label: 'layer', lead: [4], N: 24, K: 32, type: 'nf4', blocksize: 32, dq: false, bias: true };
    const { q, w } = makeWeight(c, 19);
    const before = rt.memoryStats().byTag.weights;
    const layer = new Linear4bit('proj', uploadQuantized4bit(rt, q), fromArray(rt, randn(24, 20), [24], 'f32', { tag: 'weights' }));
    expect([layer.inFeatures, layer.outFeatures, layer.parameters().length]).toEqual([32, 24, 0]);
    const x = fromArray(rt, randn(4 * 32, 21), [4, 32], 'f32', { requiresGrad: true });
    const y = tidy(() => layer.forward(x));
    const gs = randn(4 * 24, 22);
    backward(y, fromArray(rt, gs, [4, 24]));
    // dx = dy W: the reference with W transposed ([in, out]) as the right operand.
    const wt = Float32Array.from({ length: 24 * 32 }, (_, i) => w[(i % 24) * 32 + Math.floor(i / 24)] ?? 0);
    const ref = reference(gs, wt, null, 4, 32, 24);
    expect(x.grad?.shape).toEqual([4, 32]);
    expectWithinRoundoff((await x.grad?.toArray()) ?? [], ref.y, ref.mag, 24, 'Linear4bit dx');
    y.dispose();
    x.dispose();
    layer.dispose();
    expect(rt.memoryStats().byTag.weights).toBe(before);
  });

  it('names the op and both shapes on a mismatch', () => {
    const c: Case = { label: 'err', lead: [2], N: 8, K: 32, type: 'nf4', blocksize: 32, dq: false, bias: false };
    const qt = uploadQuantized4bit(rt, makeWeight(c, 23).q);
    const x = fromArray(rt, randn(2 * 30, 24), [2, 30]);
    expect(() => linear4bit(x, qt)).toThrow(ShapeMismatchError);
    expect(() => linear4bit(x, qt)).toThrow(/linear4bit.*x \[\.\.\., 32\].*\[8, 32\].*x \[2, 30\]/s);
    const ints = fromArray(rt, [1, 2], [1, 2], 'i32');
    expect(() => linear4bit(ints, qt)).toThrow(DTypeError);
    const b = fromArray(rt, randn(7, 1), [7]);
    const x32 = fromArray(rt, randn(64, 25), [2, 32]);
    expect(() => linear4bit(x32, qt, b)).toThrow(/bias \[8\]/);
    const tall = fromArray(rt, randn(9 * 32, 26), [9, 32]);
    expect(() => linear4bit(tall, qt, null, { kernel: 'gemv' })).toThrow(/gemv.*9 rows/);
    tall.dispose();
    for (const t of [x, ints, b, x32]) t.dispose();
    disposeQuantized4bit(qt);
  });
});

describe('bitsandbytes Linear4bit fixtures', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it.each(['nf4', 'fp4'])('linear4bit-%s.safetensors: the state dict run on test.x gives test.y within 1e-5', async (type) => {
    const file = await SafetensorsFile.open(`${BNB}linear4bit-${type}.safetensors`);
    try {
      const q = await readQuantized4bit(file, 'weight');
      expect([q.quantType, q.doubleQuant, q.shape]).toEqual([type, true, [160, 64]]);
      const layer = new Linear4bit('fixture', uploadQuantized4bit(rt, q), fromArray(rt, await file.readF32('bias'), [160], 'f32', { tag: 'weights' }));
      const x: Tensor = fromArray(rt, await file.readF32('test.x'), [3, 64]);
      const y = layer.forward(x);
      const want = await file.readF32('test.y');
      const got = (await y.toArray()) as Float32Array;
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assertClose(got, want, { atol: 1e-5 * scale, rtol: 1e-5 }, `linear4bit-${type} test.y`);
      for (const t of [x, y]) t.dispose();
      layer.dispose();
    } finally {
      await file.close();
    }
  });
});
