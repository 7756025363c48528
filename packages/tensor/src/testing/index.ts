// Helpers for testing kernels against plain TypeScript references: seeded random data,
// tolerance checks (atol + |ref| * rtol) and finite-difference gradients in float64.
import { backward } from '../core/autograd.js';
import { createRuntime } from '../core/create-runtime.js';
import { fromArray } from '../core/create.js';
import type { Runtime } from '../core/runtime.js';
import type { Tensor, Shape } from '../core/tensor.js';

/** A small seeded PRNG (mulberry32) for reproducible test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` standard-normal values (Box-Muller) times `scale`, rounded to float32. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v) * scale;
  }
  return out;
}

/** `n` uniform values in [lo, hi), rounded to float32. */
export function randu(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Tolerances the op tests use. */
export const TOL = {
  f32: { atol: 1e-6, rtol: 1e-5 },
  f16: { atol: 1e-3, rtol: 2e-3 },
  grad: { atol: 1e-5, rtol: 1e-4 },
} as const;

export interface CloseReport {
  ok: boolean;
  maxAbs: number;
  worst: number;
  message: string;
}

/** Compares element by element: |a - e| <= atol + |e| * rtol (NaN only matches NaN). */
export function compareClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = 'values'): CloseReport {
  if (actual.length !== expected.length) {
    return { ok: false, maxAbs: Infinity, worst: -1, message: `${label}: length ${actual.length} != expected ${expected.length}` };
  }
  let maxAbs = 0;
  let worst = -1;
  let worstExcess = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] ?? NaN;
    const e = expected[i] ?? NaN;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue;
    const d = Math.abs(a - e);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    const excess = d - (tol.atol + Math.abs(e) * tol.rtol);
    if (!(excess <= 0)) {
      bad += 1;
      if (worst < 0 || excess > worstExcess || Number.isNaN(excess)) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  const message =
    bad === 0
      ? `${label}: ok (max abs error ${maxAbs.toExponential(2)})`
      : `${label}: ${bad}/${actual.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}); worst at ${worst}: got ${actual[worst]}, expected ${expected[worst]}; max abs error ${maxAbs.toExponential(3)}`;
  return { ok: bad === 0, maxAbs, worst, message };
}

/** Throws with a precise message unless `actual` is within tolerance of `expected`. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = 'values'): void {
  const r = compareClose(actual, expected, tol, label);
  if (!r.ok) throw new Error(r.message);
}

/**
 * Float64 central-difference gradients of sum(f(inputs) * outGrad) with respect to each input,
 * for a reference function written on plain arrays.
 */
export function numericGrads(
  f: (inputs: Float64Array[]) => ArrayLike<number>,
  inputs: readonly ArrayLike<number>[],
  outGrad: ArrayLike<number>,
  eps = 1e-6,
): Float64Array[] {
  const xs = inputs.map((x) => Float64Array.from(x));
  const objective = (): number => {
    const y = f(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += (y[i] ?? 0) * (outGrad[i] ?? 0);
    return s;
  };
  return xs.map((x) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const keep = x[i] ?? 0;
      const h = eps * Math.max(1, Math.abs(keep));
      x[i] = keep + h;
      const up = objective();
      x[i] = keep - h;
      const down = objective();
      x[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  });
}

export interface GradCase {
  data: Float32Array;
  shape: Shape;
  /** Whether this input takes a gradient (default true). */
  requiresGrad?: boolean;
}

/**
 * Runs `op` on the GPU with inputs that require grad, back-propagates a random output gradient,
 * and returns the GPU output and input gradients next to the float64 reference ones.
 */
export async function gradCheck(
  rt: Runtime,
  op: (...xs: Tensor[]) => Tensor,
  reference: (inputs: Float64Array[]) => ArrayLike<number>,
  cases: readonly GradCase[],
  seed = 7,
): Promise<{ output: Float32Array; grads: (Float32Array | null)[]; expectedGrads: Float64Array[]; expectedOutput: ArrayLike<number> }> {
  const xs = cases.map((c) => fromArray(rt, c.data, c.shape, 'f32', { requiresGrad: c.requiresGrad ?? true }));
  const out = op(...xs);
  const outHost = (await out.toArray()) as Float32Array;
  const g = randn(out.numel, seed);
  const gT = fromArray(rt, g, out.shape);
  backward(out, gT);
  const grads = await Promise.all(xs.map(async (x) => (x.grad ? ((await x.grad.toArray()) as Float32Array) : null)));
  const expectedGrads = numericGrads(reference, cases.map((c) => c.data), g);
  const expectedOutput = reference(cases.map((c) => Float64Array.from(c.data)));
  for (const t of [...xs, out, gT]) t.dispose();
  return { output: outHost, grads, expectedGrads, expectedOutput };
}

let shared: Promise<Runtime> | undefined;

/** One runtime per test file (vitest runs each file in its own process). */
export function testRuntime(): Promise<Runtime> {
  shared ??= createRuntime({ seed: 1234 });
  return shared;
}
