// Global-norm clipping against a float64 reference of torch.nn.utils.clip_grad_norm_: the norm
// it returns (a GPU tensor) and the clipped gradients, over many tensors of odd sizes.
//
// Tolerance: the GPU sums squares in f32 (tree sums per 1024-element block, then per tensor), whose
// relative error stays near log2(n) * 2^-24 for these sizes; rtol 1e-5 leaves a margin of ten.
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, type Runtime, type Tensor } from '@peft-ts/tensor';
import { assertClose, randn, testRuntime } from '@peft-ts/tensor/testing';
import { clipGradNorm } from '../index.js';
import { param, setGrad } from '../test-support/fixtures.js';
import { clipRef } from './clip.ref.js';

const TOL = { atol: 1e-9, rtol: 1e-5 };

describe('clipGradNorm', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  function setup(sizes: readonly number[], scale: number): { ps: Tensor[]; grads: Float32Array[] } {
    const ps = sizes.map((n) => param(rt, new Float32Array(n), [n]));
    const grads = sizes.map((n, i) => randn(n, 200 + i, scale));
    ps.forEach((p, i) => setGrad(p, grads[i] ?? new Float32Array()));
    return { ps, grads };
  }

  it('returns the total norm and scales every gradient when it exceeds maxNorm (12 tensors, one of 5000 elements)', async () => {
    const sizes = [1, 7, 255, 256, 257, 1000, 5000, 3, 31, 1023, 1025, 64];
    const { ps, grads } = setup(sizes, 0.5);
    const ref = clipRef(grads, 1.5);
    expect(ref.coef).toBeLessThan(1);
    const norm = clipGradNorm(ps, 1.5);
    expect(norm.shape).toEqual([]);
    expect(norm.dtype).toBe('f32');
    assertClose([await norm.item()], [ref.total], TOL, 'total norm');
    for (const [i, p] of ps.entries()) {
      assertClose((await p.grad?.toArray()) ?? [], ref.clipped[i] ?? [], TOL, `clipped grad ${i}`);
    }
    norm.dispose();
  });

  it('leaves gradients unchanged below maxNorm, and skips parameters without a gradient', async () => {
    const { ps, grads } = setup([100, 300], 0.01);
    const none = param(rt, new Float32Array(5), [5]);
    const ref = clipRef(grads, 10);
    expect(ref.coef).toBe(1);
    const norm = clipGradNorm([...ps, none], 10);
    assertClose([await norm.item()], [ref.total], TOL, 'total norm');
    for (const [i, p] of ps.entries()) expect(Array.from((await p.grad?.toArray()) ?? [])).toEqual(Array.from(grads[i] ?? []));
    expect(none.grad).toBeNull();
    norm.dispose();
  });

  it('returns a zero norm when no parameter has a gradient', async () => {
    const p = param(rt, new Float32Array(3), [3]);
    const norm = clipGradNorm([p], 1);
    expect(await norm.item()).toBe(0);
    norm.dispose();
  });

  it('propagates a non-finite norm as PyTorch does (no error, NaN gradients)', async () => {
    const p = param(rt, new Float32Array(4), [4]);
    p.grad = fromArray(rt, [1, Infinity, 2, 3], [4], 'f32', { tag: 'grads' });
    const norm = clipGradNorm([p], 1);
    expect(await norm.item()).toBe(Infinity);
    // coef = 1 / inf * max_norm = 0; the infinite element becomes inf * 0 = NaN.
    const g = Array.from((await p.grad.toArray()) as Float32Array);
    expect(g[0]).toBe(0);
    expect(g[1]).toBeNaN();
    norm.dispose();
  });
});
