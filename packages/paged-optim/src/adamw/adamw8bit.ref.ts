// Reference of bitsandbytes' blockwise 8-bit Adam update in plain TypeScript, in f32 arithmetic:
// dequantize a 256-element block, update m and v, take the block's new absmax, update the
// parameter, requantize to the nearest code (keeping m's sign), as the GPU kernel does.
import { DYNAMIC_MAP_SIGNED, DYNAMIC_MAP_UNSIGNED, dynamicIndex } from '@peft-ts/nf4-quant';
import { f } from '../reference/f32-math.js';
import type { AdamWRefHyper } from './adamw.ref.js';

export const BLOCKSIZE = 256;

export interface Adam8RefState {
  p: Float32Array;
  state1: Uint8Array;
  state2: Uint8Array;
  absmax1: Float32Array;
  absmax2: Float32Array;
  step: number;
}

/** Zero state as bitsandbytes allocates it: codes 0 and absmax 0 (every value dequantizes to 0). */
export function adam8RefInit(p: ArrayLike<number>): Adam8RefState {
  const blocks = Math.ceil(p.length / BLOCKSIZE);
  return {
    p: Float32Array.from(p),
    state1: new Uint8Array(p.length),
    state2: new Uint8Array(p.length),
    absmax1: new Float32Array(blocks),
    absmax2: new Float32Array(blocks),
    step: 0,
  };
}

const signBit = (x: number): number => (x < 0 || Object.is(x, -0) ? 1 : 0);

export function adam8RefStep(s: Adam8RefState, g: ArrayLike<number>, h: AdamWRefHyper): void {
  s.step += 1;
  const b1 = f(h.beta1);
  const b2 = f(h.beta2);
  const omb1 = f(1 - b1);
  const omb2 = f(1 - b2);
  const corr1 = 1 - h.beta1 ** s.step;
  const corr2 = Math.sqrt(1 - h.beta2 ** s.step);
  const stepSize = f((-h.lr * corr2) / corr1);
  const c2eps = f(f(corr2) * f(h.eps));
  const decay = f(1 - f(f(h.lr) * f(h.weightDecay)));
  const n = s.p.length;
  const s1 = new Float32Array(BLOCKSIZE);
  const s2 = new Float32Array(BLOCKSIZE);
  const live = new Uint8Array(BLOCKSIZE);
  for (let b = 0; b * BLOCKSIZE < n; b++) {
    const start = b * BLOCKSIZE;
    const end = Math.min(n, start + BLOCKSIZE);
    const a1 = s.absmax1[b] ?? 0;
    const a2 = s.absmax2[b] ?? 0;
    let nm1 = 0;
    let nm2 = 0;
    for (let i = start; i < end; i++) {
      const k = i - start;
      const gi = g[i] ?? 0;
      s1[k] = 0;
      s2[k] = 0;
      live[k] = Number.isFinite(gi) ? 1 : 0;
      if (live[k]) {
        const v = f((DYNAMIC_MAP_UNSIGNED[s.state2[i] ?? 0] ?? 0) * a2);
        s2[k] = f(f(v * b2) + f(f(omb2 * gi) * gi));
        const m = f((DYNAMIC_MAP_SIGNED[s.state1[i] ?? 0] ?? 0) * a1);
        s1[k] = f(f(m * b1) + f(omb1 * gi));
      }
      nm1 = Math.max(nm1, Math.abs(s1[k] ?? 0));
      nm2 = Math.max(nm2, Math.abs(s2[k] ?? 0));
    }
    s.absmax1[b] = nm1;
    s.absmax2[b] = nm2;
    const inv1 = nm1 > 0 ? f(1 / nm1) : 0;
    const inv2 = nm2 > 0 ? f(1 / nm2) : 0;
    for (let i = start; i < end; i++) {
      const k = i - start;
      const m = s1[k] ?? 0;
      const v = s2[k] ?? 0;
      if (live[k]) {
        const q = f(m / f(f(Math.sqrt(v)) + c2eps));
        let p = f((s.p[i] ?? 0) + f(stepSize * q));
        if (h.weightDecay > 0) p = f(p * decay);
        s.p[i] = p;
      }
      let c1 = dynamicIndex(f(m * inv1), DYNAMIC_MAP_SIGNED);
      if (signBit(DYNAMIC_MAP_SIGNED[c1] ?? 0) !== signBit(m)) c1 = (m > 0 ? c1 + 1 : c1 - 1) & 255;
      s.state1[i] = c1;
      s.state2[i] = dynamicIndex(f(v * inv2), DYNAMIC_MAP_UNSIGNED);
    }
  }
}
