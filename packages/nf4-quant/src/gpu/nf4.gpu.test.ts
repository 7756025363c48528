// Real-GPU sizes (not run in CI): a weight big enough for 2-D dispatch grids quantized and
// dequantized bit-identically to the CPU path, and the fused 4-bit linear at a Llama-7B MLP
// shape against dequantize-then-linear.
import { beforeAll, describe, expect, it } from 'vitest';
import { f32ToBf16 } from '@peft-ts/safetensors';
import { fromArray, linear, type Runtime } from '@peft-ts/tensor';
import { randn, testRuntime } from '@peft-ts/tensor/testing';
import { dequantize, quantize } from '../index.js';
import { dequantize4bitGpu, disposeQuantized4bit, downloadQuantized4bit, linear4bit, quantize4bitGpu } from './index.js';

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('nf4 on a real GPU', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('quantizes and dequantizes a 138M-parameter bf16 weight bit-identically to the CPU path', async () => {
    // 16384 x 8448 = 138M elements: more than 65535 workgroups, so the grids go 2-D.
    const [rows, cols] = [16384, 8448];
    const shape = [rows, cols];
    const words = f32ToBf16(randn(rows * cols, 1, 0.02));
    const w = fromArray(rt, words, shape, 'bf16', { tag: 'weights' });
    const q = await quantize4bitGpu(w, { doubleQuant: true });
    w.dispose();
    const want = quantize({ words, dtype: 'bf16' }, { doubleQuant: true, shape });
    const got = await downloadQuantized4bit(q);
    expect(firstDiff(got.packed, want.packed)).toBe(-1);
    if (!got.doubleQuant || !want.doubleQuant) throw new Error('expected double-quantized states');
    expect(firstDiff(got.qabsmax, want.qabsmax)).toBe(-1);
    expect(firstDiff(got.nestedAbsmax, want.nestedAbsmax)).toBe(-1);
    expect(got.offset).toBe(want.offset);
    const back = dequantize4bitGpu(q, { dtype: 'bf16' });
    expect(firstDiff((await back.toRaw()) as Uint16Array, dequantize(want, { to: 'bf16' }))).toBe(-1);
    back.dispose();
    disposeQuantized4bit(q);
  });

  it('fused linear [2048, 4096] x [11008, 4096]^T agrees with dequantize-then-linear', async () => {
    const [M, K, N] = [2048, 4096, 11008];
    const w = fromArray(rt, randn(N * K, 2, 0.02), [N, K], 'f16', { tag: 'weights' });
    const q = await quantize4bitGpu(w, { doubleQuant: true });
    w.dispose();
    const x = fromArray(rt, randn(M * K, 3), [M, K]);
    const dense = dequantize4bitGpu(q);
    const yRef = linear(x, dense);
    const yGot = linear4bit(x, q);
    const ref = (await yRef.toArray()) as Float32Array;
    const got = (await yGot.toArray()) as Float32Array;
    // Both sum 4096 f32 products in different orders: each differs from the exact sum by about
    // sqrt(K) * 2^-24 * sqrt(sum of squared terms); 1e-4 of the largest output bounds that here.
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      scale = Math.max(scale, Math.abs(ref[i] ?? 0));
      worst = Math.max(worst, Math.abs((got[i] ?? NaN) - (ref[i] ?? 0)));
    }
    expect(worst).toBeLessThan(1e-4 * scale);
    for (const t of [x, dense, yRef, yGot]) t.dispose();
    disposeQuantized4bit(q);
  });
});
