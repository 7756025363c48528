// attention at real-model head dims (64, 80, 96, 128) and longer sequences, against the float64
// reference, with the block sizes the device's own workgroup memory gives. Needs a real GPU.
import { beforeAll, describe, it } from 'vitest';
import { attention, backward, fromArray, type Runtime } from '../../index.js';
import { assertClose, randn, testRuntime, TOL, type Tolerance } from '../../testing/index.js';
import { attentionBackwardRef, attentionRef, type AttentionRefConfig } from './attention.ref.js';

/** As in attention.test.ts: 8x (resp. 16x) the sqrt(n) * 2^-24 round-off of the dot over D and the sum over T. */
function tol(factor: number, D: number, terms: number, ref: Float32Array | Float64Array, rtol: number): Tolerance {
  let m = 0;
  for (const x of ref) m = Math.max(m, Math.abs(x));
  return { atol: factor * 2 ** -24 * (Math.sqrt(D) + Math.sqrt(terms)) * m, rtol };
}

describe('attention on a GPU', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  const cases: (AttentionRefConfig & { padRight?: number })[] = [
    { B: 1, T: 512, HQ: 8, HKV: 2, D: 128 },
    { B: 2, T: 301, HQ: 4, HKV: 4, D: 80, padRight: 37 },
    { B: 1, T: 257, HQ: 6, HKV: 2, D: 96, window: 100 },
    { B: 1, T: 384, HQ: 8, HKV: 8, D: 64 },
  ];

  for (const c of cases) {
    it(`forward and backward match the reference (T ${c.T}, Hq ${c.HQ}, Hkv ${c.HKV}, D ${c.D})`, async () => {
      const q = randn(c.B * c.T * c.HQ * c.D, 1);
      const k = randn(c.B * c.T * c.HKV * c.D, 2);
      const v = randn(c.B * c.T * c.HKV * c.D, 3);
      const g = randn(c.B * c.T * c.HQ * c.D, 4);
      const cfg: AttentionRefConfig = { ...c };
      let mask;
      if (c.padRight) {
        const m = new Int32Array(c.B * c.T).fill(1);
        for (let i = c.T - c.padRight; i < c.T; i++) m[i] = 0;
        cfg.mask = m;
        mask = fromArray(rt, m, [c.B, c.T], 'i32');
      }
      const tq = fromArray(rt, q, [c.B, c.T, c.HQ, c.D], 'f32', { requiresGrad: true });
      const tk = fromArray(rt, k, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
      const tv = fromArray(rt, v, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
      const out = attention(tq, tk, tv, {
        ...(mask ? { attentionMask: mask } : {}),
        ...(c.window !== undefined ? { slidingWindow: c.window } : {}),
      });
      const tg = fromArray(rt, g, out.shape);
      backward(out, tg);
      const want = attentionRef(cfg, q, k, v);
      assertClose(await out.toArray(), want, tol(8, c.D, c.T, v, TOL.f32.rtol), 'output');
      const grads = attentionBackwardRef(cfg, q, k, v, g);
      const group = c.HQ / c.HKV;
      for (const [name, t, ref, terms] of [
        ['dq', tq, grads.dq, c.T],
        ['dk', tk, grads.dk, c.T * group],
        ['dv', tv, grads.dv, c.T * group],
      ] as const) {
        if (!t.grad) throw new Error(`${name}: no gradient`);
        assertClose(await t.grad.toArray(), ref, tol(16, c.D, terms, ref, TOL.grad.rtol), name);
      }
      for (const t of [tq, tk, tv, out, tg]) t.dispose();
      mask?.dispose();
    });
  }
});
