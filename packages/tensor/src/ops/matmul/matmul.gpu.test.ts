// matmul on a real GPU: the subgroup-matrix path against the tiled kernel, the large tile at
// LLM sizes, and an lm_head-sized weight split across bindings. Not run in CI (lavapipe).
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, linear, matmul, matmulKernels, type Runtime } from '../../index.js';
import { assertClose, randn, testRuntime, TOL, type Tolerance } from '../../testing/index.js';

/**
 * Two f32-accumulating kernels on the same rounded inputs differ by summation order (and, for
 * tensor cores, by their internal accumulation): allow 64 * sqrt(K) * 2^-24 of the largest
 * sum_k |a_k b_k|, which for N(0, 1) inputs is about K * 0.64 + a few sqrt(K).
 */
function orderTolerance(K: number, scale = 1): Tolerance {
  const magnitude = scale * (0.8 * K + 6 * Math.sqrt(K));
  return { atol: 64 * Math.sqrt(K) * 2 ** -24 * magnitude, rtol: 1e-4 };
}

describe('matmul on a GPU', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('the subgroup-matrix path matches the tiled kernel on f16 inputs, every transpose, odd edges', async () => {
    expect(matmulKernels(rt)).toContain('subgroup-matrix');
    const shapes: [number, number, number][] = [
      [333, 1000, 517],
      [1024, 1024, 1024],
      [5, 4096, 4099],
      [1, 64, 8],
    ];
    for (const [M, K, N] of shapes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = fromArray(rt, randn(M * K, M + K), ta ? [K, M] : [M, K], 'f16');
          const b = fromArray(rt, randn(K * N, K + N), tb ? [N, K] : [K, N], 'f16');
          const bias = fromArray(rt, randn(N, 3), [N]);
          const o = { transA: ta, transB: tb, bias };
          const want = await matmul(a, b, { ...o, kernel: 'tiled-f16' }).toArray();
          const got = await matmul(a, b, { ...o, kernel: 'subgroup-matrix' }).toArray();
          assertClose(got, want, orderTolerance(K), `subgroup-matrix ${M}x${K}x${N} transA ${ta} transB ${tb}`);
          for (const t of [a, b, bias]) t.dispose();
        }
      }
    }
  });

  it('the subgroup-matrix path handles batches, f32 inputs (rounded to f16) and split reductions', async () => {
    const [B, M, K, N] = [3, 200, 320, 260];
    const x = randn(B * M * K, 1);
    const w = randn(N * K, 2);
    const tx = fromArray(rt, x, [B, M, K]);
    const tw = fromArray(rt, w, [N, K], 'f16');
    const tx16 = fromArray(rt, x, [B, M, K], 'f16');
    // The subgroup path rounds f32 x to f16: the tiled kernel on the f16 copy is the reference.
    const want = await linear(tx16, tw, null, { kernel: 'tiled-f16' }).toArray();
    assertClose(await linear(tx, tw, null, { kernel: 'subgroup-matrix' }).toArray(), want, orderTolerance(K), 'f32 x');
    // Batched per-operand products, and a K split summed into the output.
    const a = fromArray(rt, randn(B * M * K, 3), [B, M, K], 'f16');
    const b = fromArray(rt, randn(B * K * N, 4), [B, K, N], 'f16');
    assertClose(await matmul(a, b, { kernel: 'subgroup-matrix' }).toArray(), await matmul(a, b, { kernel: 'tiled-f16' }).toArray(), orderTolerance(K), 'batched');
    const a2 = fromArray(rt, randn(M * K, 5), [M, K], 'f16');
    const b2 = fromArray(rt, randn(K * N, 6), [K, N], 'f16');
    const split = await matmul(a2, b2, { kernel: 'subgroup-matrix', maxBindingBytes: 64 * 1024 }).toArray();
    assertClose(split, await matmul(a2, b2, { kernel: 'tiled-f16' }).toArray(), orderTolerance(K), 'K split');
  });

  it('the 128x128 tiled kernel matches the simple kernel at LLM sizes (f32 and f16 weights)', async () => {
    const [M, K, N] = [512, 4096, 1100];
    const x = fromArray(rt, randn(M * K, 7), [M, K]);
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const w = fromArray(rt, randn(N * K, 8, 0.05), [N, K], dtype);
      const want = await linear(x, w, null, { kernel: 'naive' }).toArray();
      for (const kernel of ['tiled', 'tiled-f16'] as const) {
        const got = await linear(x, w, null, { kernel, tile: 128 }).toArray();
        assertClose(got, want, orderTolerance(K, 0.05), `${kernel} ${dtype} 128 tile`);
      }
      w.dispose();
    }
  });

  it('splits an lm_head-sized weight across bindings with the same logits and input gradient', async () => {
    const [T, H, V] = [16, 2048, 128256];
    const x = fromArray(rt, randn(T * H, 9), [T, H]);
    const w = fromArray(rt, randn(V * H, 10, 0.02), [V, H], 'f16');
    const whole = linear(x, w);
    const split = linear(x, w, null, { maxBindingBytes: 128 * 2 ** 20 });
    assertClose(await split.toArray(), await whole.toArray(), TOL.f32, 'logits');
    const g = fromArray(rt, randn(T * V, 11), [T, V]);
    const dxWhole = matmul(g, w);
    const dxSplit = matmul(g, w, { maxBindingBytes: 128 * 2 ** 20 });
    assertClose(await dxSplit.toArray(), await dxWhole.toArray(), orderTolerance(V, 0.02), 'dx = g @ w, K split');
  });
});
