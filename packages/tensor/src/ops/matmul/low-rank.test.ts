// addLowRankInPlace: y += s * (x A^T) B^T in one dispatch, against a float64 reference over ranks,
// row counts and widths that cross the workgroup's output slice, f16/bf16 activations, and the
// unfused form (two products, a scale and an add); and when it refuses to run.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { add, addLowRankInPlace, f16WordsToF32, f32ToF16Bits, fromArray, linear, lowRankFusable, noGrad, scale, type Runtime } from '../../index.js';
import { assertClose, randn, testRuntime, TOL } from '../../testing/index.js';

function reference(y: Float32Array, x: ArrayLike<number>, a: Float32Array, b: Float32Array, rows: number, K: number, R: number, N: number, s: number): { out: Float64Array; magnitude: number } {
  const out = Float64Array.from(y);
  let magnitude = 0;
  for (let m = 0; m < rows; m++) {
    const t = new Float64Array(R);
    const tAbs = new Float64Array(R);
    for (let j = 0; j < R; j++) {
      let sum = 0;
      let sumAbs = 0;
      for (let k = 0; k < K; k++) {
        sum += (a[j * K + k] ?? 0) * (x[m * K + k] ?? 0);
        sumAbs += Math.abs((a[j * K + k] ?? 0) * (x[m * K + k] ?? 0));
      }
      t[j] = sum;
      tAbs[j] = sumAbs;
    }
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let accAbs = 0;
      for (let j = 0; j < R; j++) {
        acc += (t[j] ?? 0) * (b[n * R + j] ?? 0);
        accAbs += (tAbs[j] ?? 0) * Math.abs(b[n * R + j] ?? 0);
      }
      out[m * N + n] = (out[m * N + n] ?? 0) + s * acc;
      magnitude = Math.max(magnitude, Math.abs(s) * accAbs);
    }
  }
  return { out, magnitude };
}

/** f32 sums of K then R products: error within (K + R) * 2^-24 of the sum of absolute terms, doubled for margin. */
const tolFor = (K: number, R: number, magnitude: number) => ({ atol: TOL.f32.atol + 2 * (K + R) * 2 ** -24 * magnitude, rtol: TOL.f32.rtol });

/** Rounds to bf16 (nearest even) and returns the 16-bit words and the rounded values. */
function toBf16(v: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const u = new Uint32Array(v.buffer.slice(0));
  const bits = Uint16Array.from(u, (w) => (w + 0x7fff + ((w >>> 16) & 1)) >>> 16);
  const values = new Float32Array(new Uint32Array(Array.from(bits, (h) => h << 16)).buffer);
  return { bits, values };
}

describe('addLowRankInPlace', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  const cases: [number, number, number, number][] = [
    // rows, K, R, N
    [1, 1, 1, 1],
    [1, 256, 8, 256],
    [3, 300, 16, 513],
    [2, 64, 64, 1100],
    [37, 129, 5, 70],
  ];
  for (const [rows, K, R, N] of cases) {
    it(`rows ${rows}, K ${K}, rank ${R}, N ${N}: equals the float64 reference`, async () => {
      const x = randn(rows * K, 1 + rows);
      const a = randn(R * K, 2 + K, 0.1);
      const b = randn(N * R, 3 + N, 0.1);
      const y0 = randn(rows * N, 4 + R);
      const s = 2.5;
      const xT = fromArray(rt, x, [rows, K]);
      const aT = fromArray(rt, a, [R, K]);
      const bT = fromArray(rt, b, [N, R]);
      const yT = fromArray(rt, y0, [rows, N]);
      expect(lowRankFusable(yT, xT, aT, bT)).toBe(true);
      expect(addLowRankInPlace(yT, xT, aT, bT, s)).toBe(yT);
      const { out, magnitude } = reference(y0, x, a, b, rows, K, R, N, s);
      assertClose(await yT.toArray(), out, tolFor(K, R, magnitude), 'y');
      for (const t of [xT, aT, bT, yT]) t.dispose();
    });
  }

  it('agrees with the unfused form, a batch of rows with leading dims, to f32 round-off', async () => {
    const [B, T, K, R, N] = [2, 5, 96, 8, 200];
    const xs = randn(B * T * K, 11);
    const as = randn(R * K, 12, 0.2);
    const bs = randn(N * R, 13, 0.2);
    const ys = randn(B * T * N, 14);
    const x = fromArray(rt, xs, [B, T, K]);
    const a = fromArray(rt, as, [R, K]);
    const b = fromArray(rt, bs, [N, R]);
    const y = fromArray(rt, ys, [B, T, N]);
    const unfused = noGrad(() => add(y, scale(linear(linear(x, a), b), 0.75)));
    addLowRankInPlace(y, x, a, b, 0.75);
    const got = await y.toArray();
    const want = await unfused.toArray();
    // Each side rounds K + R products, a scale and an add in f32, in its own order: each is within
    // (K + R + 2) * 2^-24 of the sum of absolute terms (plus |y|) of the exact value, so they are
    // within twice that of each other.
    const { out, magnitude } = reference(ys, xs, as, bs, B * T, K, R, N, 0.75);
    const yMax = out.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const bound = 2 * (K + R + 2) * 2 ** -24 * (magnitude + yMax);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs((got[i] ?? 0) - (want[i] ?? 0)));
    expect(worst).toBeLessThanOrEqual(bound);
    for (const t of [x, a, b, y, unfused]) t.dispose();
  });

  it('reads f16 and bf16 activations', async () => {
    const [rows, K, R, N] = [4, 70, 8, 90];
    const xf = randn(rows * K, 21);
    const a = randn(R * K, 22, 0.1);
    const b = randn(N * R, 23, 0.1);
    const y0 = randn(rows * N, 24);
    const bf = toBf16(xf);
    const inputs: [string, ReturnType<typeof fromArray>, Float32Array][] = [['bf16', fromArray(rt, bf.bits, [rows, K], 'bf16'), bf.values]];
    if (rt.has('shader-f16')) {
      const bits = Uint16Array.from(xf, (v) => f32ToF16Bits(v));
      inputs.push(['f16', fromArray(rt, bits, [rows, K], 'f16'), f16WordsToF32(bits)]);
    }
    for (const [dtype, xT, xv] of inputs) {
      const aT = fromArray(rt, a, [R, K]);
      const bT = fromArray(rt, b, [N, R]);
      const yT = fromArray(rt, y0, [rows, N]);
      addLowRankInPlace(yT, xT, aT, bT, -1.5);
      const { out, magnitude } = reference(y0, xv, a, b, rows, K, R, N, -1.5);
      assertClose(await yT.toArray(), out, tolFor(K, R, magnitude), `y (${dtype} x)`);
      for (const t of [xT, aT, bT, yT]) t.dispose();
    }
  });

  it('is not for training, nor past its rank limit, and names bad shapes', () => {
    const x = fromArray(rt, randn(2 * 8, 31), [2, 8]);
    const a = fromArray(rt, randn(4 * 8, 32), [4, 8], 'f32', { requiresGrad: true });
    const b = fromArray(rt, randn(6 * 4, 33), [6, 4]);
    const y = fromArray(rt, randn(2 * 6, 34), [2, 6]);
    expect(lowRankFusable(y, x, a, b)).toBe(false);
    expect(() => addLowRankInPlace(y, x, a, b, 1)).toThrow(DTypeError);
    noGrad(() => {
      expect(lowRankFusable(y, x, a, b)).toBe(true);
      expect(() => addLowRankInPlace(y, x, b, a, 1)).toThrow(ShapeMismatchError);
    });
    const wide = fromArray(rt, randn(65 * 8, 35), [65, 8]);
    const tall = fromArray(rt, randn(6 * 65, 36), [6, 65]);
    expect(lowRankFusable(y, x, wide, tall)).toBe(false);
    for (const t of [x, a, b, y, wide, tall]) t.dispose();
  });
});
