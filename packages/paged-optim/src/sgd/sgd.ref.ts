// Reference SGD in plain TypeScript: PyTorch's `_single_tensor_sgd`, each float32 operation in
// float64 rounded to f32; PyTorch's add with alpha is a fused multiply-add on its CPU kernels.
import { f, fmaf } from '../reference/f32-math.js';

export interface SGDRefHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export interface SGDRefState {
  p: Float32Array;
  buf: Float32Array | null;
}

export function sgdRefStep(s: SGDRefState, g: ArrayLike<number>, h: SGDRefHyper, fused = true): void {
  const fma = fused ? fmaf : (a: number, b: number, c: number): number => f(f(a * b) + c);
  const wd = f(h.weightDecay);
  const mom = f(h.momentum);
  const omd = f(1 - h.dampening);
  const negLr = f(-h.lr);
  const first = s.buf === null;
  if (h.momentum !== 0 && !s.buf) s.buf = new Float32Array(s.p.length);
  for (let i = 0; i < s.p.length; i++) {
    const p = s.p[i] ?? 0;
    // grad = grad.add(param, alpha=weight_decay)
    let d = h.weightDecay !== 0 ? fma(p, wd, g[i] ?? 0) : (g[i] ?? 0);
    if (h.momentum !== 0 && s.buf) {
      // First step: buf = grad.clone(); then buf.mul_(momentum).add_(grad, alpha=1 - dampening).
      const buf = first ? d : fma(d, omd, f((s.buf[i] ?? 0) * mom));
      s.buf[i] = buf;
      d = h.nesterov ? fma(buf, mom, d) : buf;
    }
    // param.add_(grad, alpha=-lr)
    s.p[i] = fma(d, negLr, p);
  }
}
