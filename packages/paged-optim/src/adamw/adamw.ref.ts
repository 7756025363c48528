// Reference AdamW in plain TypeScript: PyTorch's `_single_tensor_adam` with decoupled weight
// decay, computed in float64 and rounded to f32 after every operation, in PyTorch's order (the
// order its CPU kernels use: lerp as a fused multiply-add, addcmul and addcdiv left to right).
import { f, fmaf } from '../reference/f32-math.js';

export interface AdamWRefHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWRefState {
  p: Float32Array;
  m: Float32Array;
  v: Float32Array;
  step: number;
}

export function adamwRefInit(p: ArrayLike<number>): AdamWRefState {
  return { p: Float32Array.from(p), m: new Float32Array(p.length), v: new Float32Array(p.length), step: 0 };
}

/** One AdamW step on `s` with gradient `g` (in place). */
export function adamwRefStep(s: AdamWRefState, g: ArrayLike<number>, h: AdamWRefHyper, fused = true): void {
  const fma = fused ? fmaf : (a: number, b: number, c: number): number => f(f(a * b) + c);
  s.step += 1;
  // Host scalars: float64 as in Python, then cast to f32 where they meet an f32 tensor.
  const bc1 = 1 - h.beta1 ** s.step;
  const bc2 = 1 - h.beta2 ** s.step;
  const stepSize = h.lr / bc1;
  const bc2sqrt = f(Math.sqrt(bc2));
  const decay = f(1 - h.lr * h.weightDecay);
  const w = f(1 - h.beta1);
  const beta2 = f(h.beta2);
  const omb2 = f(1 - h.beta2);
  const eps = f(h.eps);
  const negStep = f(-stepSize);
  for (let i = 0; i < s.p.length; i++) {
    const gi = g[i] ?? 0;
    let p = s.p[i] ?? 0;
    let m = s.m[i] ?? 0;
    let v = s.v[i] ?? 0;
    if (h.weightDecay !== 0) p = f(p * decay);
    const d = f(gi - m);
    m = w < 0.5 ? fma(w, d, m) : fma(f(w - 1), d, gi);
    v = f(f(v * beta2) + f(f(omb2 * gi) * gi));
    const denom = f(f(f(Math.sqrt(v)) / bc2sqrt) + eps);
    p = f(p + f(f(negStep * m) / denom));
    s.p[i] = p;
    s.m[i] = m;
    s.v[i] = v;
  }
}

/** The same update in plain float64 (no f32 rounding), to show how far f32 drifts from exact math. */
export function adamwExactStep(s: { p: Float64Array; m: Float64Array; v: Float64Array; step: number }, g: ArrayLike<number>, h: AdamWRefHyper): void {
  s.step += 1;
  const bc1 = 1 - h.beta1 ** s.step;
  const bc2 = 1 - h.beta2 ** s.step;
  for (let i = 0; i < s.p.length; i++) {
    const gi = g[i] ?? 0;
    let p = (s.p[i] ?? 0) * (1 - h.lr * h.weightDecay);
    const m = h.beta1 * (s.m[i] ?? 0) + (1 - h.beta1) * gi;
    const v = h.beta2 * (s.v[i] ?? 0) + (1 - h.beta2) * gi * gi;
    p -= (h.lr / bc1) * (m / (Math.sqrt(v) / Math.sqrt(bc2) + h.eps));
    s.p[i] = p;
    s.m[i] = m;
    s.v[i] = v;
  }
}
