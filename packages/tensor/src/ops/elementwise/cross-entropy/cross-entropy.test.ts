// crossEntropy and causalLmLoss against float64 PyTorch-semantics references: reductions,
// ignoreIndex, odd shapes, large logits, 16-bit logits, gradients, memory, chunking and errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { backward, causalLmLoss, createRuntime, crossEntropy, fromArray, type Runtime } from '../../../index.js';
import { assertClose, gradCheck, randn, randu, testRuntime, TOL } from '../../../testing/index.js';
import { crossEntropyRef, shiftLabelsRef } from './cross-entropy.ref.js';
import { gradOf, withBindingLimit } from '../test-helpers.js';

/** Labels in [0, V), every `every`-th one replaced by `ignore`. */
function makeLabels(N: number, V: number, seed: number, ignore = -100, every = 4): Int32Array {
  return Int32Array.from(randu(N, seed, 0, V), (v, i) => (i % every === 1 ? ignore : Math.min(V - 1, Math.floor(v))));
}

const reductions = ['mean', 'sum', 'none'] as const;

describe('crossEntropy', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('matches the reference for every reduction on odd shapes', async () => {
    for (const [N, V] of [
      [7, 13],
      [1, 5003],
      [37, 1],
      [3, 1029],
      [300, 5],
    ] as const) {
      const x = randn(N * V, N + V, 3);
      const labels = makeLabels(N, V, N * V);
      const tx = fromArray(rt, x, [N, V]);
      const tl = fromArray(rt, labels, [N], 'i32');
      for (const reduction of reductions) {
        const loss = crossEntropy(tx, tl, { reduction });
        expect(loss.shape).toEqual(reduction === 'none' ? [N] : []);
        assertClose(await loss.toArray(), crossEntropyRef(x, labels, V, -100, reduction), TOL.f32, `${reduction} [${N}, ${V}]`);
        loss.dispose();
      }
    }
  });

  it('honours a custom ignoreIndex', async () => {
    const x = randn(9 * 11, 3, 2);
    const labels = makeLabels(9, 11, 4, 3, 3);
    const got = await crossEntropy(fromArray(rt, x, [9, 11]), fromArray(rt, labels, [9], 'i32'), { ignoreIndex: 3 }).item();
    assertClose([got], crossEntropyRef(x, labels, 11, 3), TOL.f32, 'ignoreIndex 3');
  });

  it('is accurate for large logits', async () => {
    const x = Float32Array.from(randn(5 * 301, 5, 4), (v) => v + 1000);
    const labels = makeLabels(5, 301, 6);
    const got = await crossEntropy(fromArray(rt, x, [5, 301]), fromArray(rt, labels, [5], 'i32'), { reduction: 'none' }).toArray();
    assertClose(got, crossEntropyRef(x, labels, 301, -100, 'none'), TOL.f32, 'logits near 1000');
  });

  for (const reduction of reductions) {
    it(`backward (${reduction}) matches finite differences`, async () => {
      const [N, V] = [6, 37];
      const labels = makeLabels(N, V, 8);
      const tl = fromArray(rt, labels, [N], 'i32');
      const r = await gradCheck(rt, (x) => crossEntropy(x, tl, { reduction }), ([x]) => crossEntropyRef(x ?? [], labels, V, -100, reduction), [{ data: randn(N * V, 7, 2), shape: [N, V] }]);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `grad ${reduction}`);
      for (let v = 0; v < V; v++) expect(r.grads[0]?.[V + v]).toBe(0);
    });
  }

  it('with every label ignored: mean is NaN, sum 0, and the gradient is zero', async () => {
    const x = fromArray(rt, randn(12, 2), [3, 4], 'f32', { requiresGrad: true });
    const labels = fromArray(rt, [-100, -100, -100], [3], 'i32');
    const mean = crossEntropy(x, labels);
    expect(Number.isNaN(await mean.item())).toBe(true);
    expect(await crossEntropy(x, labels, { reduction: 'sum' }).item()).toBe(0);
    backward(mean);
    expect(Array.from(await gradOf(x).toArray())).toEqual(new Array<number>(12).fill(0));
  });

  it('a label outside [0, V) makes its row NaN instead of reading garbage', async () => {
    const x = randn(4 * 5, 9);
    const tx = fromArray(rt, x, [4, 5], 'f32', { requiresGrad: true });
    const labels = [1, 5, -1, 2];
    const per = await crossEntropy(tx, fromArray(rt, labels, [4], 'i32'), { reduction: 'none' }).toArray();
    expect(Number.isNaN(per[1]) && Number.isNaN(per[2])).toBe(true);
    assertClose([per[0] ?? 0, per[3] ?? 0], crossEntropyRef(x, [1, -100, -100, 2], 5, -100, 'none').filter((_, i) => i === 0 || i === 3), TOL.f32, 'valid rows');
    const mean = crossEntropy(tx, fromArray(rt, labels, [4], 'i32'));
    expect(Number.isNaN(await mean.item())).toBe(true);
    backward(mean);
    const g = await gradOf(tx).toArray();
    expect(Array.from(g.slice(5, 15)).every(Number.isNaN)).toBe(true);
  });

  it('reads f16 and bf16 logits', async () => {
    const x = randn(9 * 130, 10, 3);
    const labels = makeLabels(9, 130, 11);
    for (const dtype of ['f16', 'bf16'] as const) {
      const tx = fromArray(rt, x, [9, 130], dtype, { requiresGrad: true });
      const w = await tx.toArray();
      const loss = crossEntropy(tx, fromArray(rt, labels, [9], 'i32'));
      assertClose([await loss.item()], crossEntropyRef(w, labels, 130), TOL.f32, `loss ${dtype}`);
      backward(loss);
      // d mean / d logits = (softmax - onehot) / count on counted rows.
      const count = labels.filter((l) => l !== -100).length;
      const expected = new Float64Array(9 * 130);
      for (let r = 0; r < 9; r++) {
        const label = labels[r] ?? -100;
        if (label === -100) continue;
        const row = Array.from(w.slice(r * 130, r * 130 + 130));
        const m = Math.max(...row);
        const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
        row.forEach((v, j) => (expected[r * 130 + j] = (Math.exp(v - m) / s - (j === label ? 1 : 0)) / count));
      }
      assertClose(await gradOf(tx).toArray(), expected, TOL.f32, `grad ${dtype}`);
    }
  });

  it('never allocates an [N, V] tensor in the forward pass', async () => {
    const [N, V] = [64, 4099];
    const tx = fromArray(rt, randn(N * V, 12), [N, V], 'f32', { requiresGrad: true });
    const tl = fromArray(rt, makeLabels(N, V, 13), [N], 'i32');
    await rt.sync();
    const before = rt.memoryStats().liveBytes;
    rt.resetPeak();
    const loss = crossEntropy(tx, tl);
    await loss.item();
    const grown = rt.memoryStats().peakBytes - before;
    // lse [N] + per-row losses [N] + the scalar and its weight, rounded up to 4-byte words.
    expect(grown).toBeLessThanOrEqual(2 * N * 4 + 8);
    backward(loss);
    // The gradient [N, V] is the only big allocation; core's backward copies it once more into
    // the leaf's .grad (tag 'grads'). A stored softmax would add a third N * V * 4.
    expect(rt.memoryStats().peakBytes - before).toBeLessThan(2 * N * V * 4 + 4 * N * 4 + 64);
  });

  it('splits rows across bindings when the logits pass the binding limit', async () => {
    const [N, V] = [37, 64];
    const x = randn(N * V, 14, 2);
    const labels = makeLabels(N, V, 15);
    await withBindingLimit(rt, 1024, async () => {
      const tl = fromArray(rt, labels, [N], 'i32');
      const before = rt.totalDispatches;
      const loss = crossEntropy(fromArray(rt, x, [N, V]), tl, { reduction: 'none' });
      // 256-byte rows, 4 per binding: 10 pieces.
      expect(rt.totalDispatches - before).toBe(10);
      assertClose(await loss.toArray(), crossEntropyRef(x, labels, V, -100, 'none'), TOL.f32, 'chunked loss');
      const r = await gradCheck(rt, (t) => crossEntropy(t, tl, { reduction: 'sum' }), ([t]) => crossEntropyRef(t ?? [], labels, V, -100, 'sum'), [{ data: x, shape: [N, V] }]);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'chunked grad');
    });
  });

  it('names the op and both shapes, or the dtype, on bad input', () => {
    const x = fromArray(rt, new Float32Array(12), [4, 3]);
    expect(() => crossEntropy(x, fromArray(rt, [0, 1, 2], [3], 'i32'))).toThrow(ShapeMismatchError);
    expect(() => crossEntropy(x, fromArray(rt, [0, 1, 2], [3], 'i32'))).toThrow(/crossEntropy: .*labels \[4\] for logits \[4, 3\].*\[3\]/);
    expect(() => crossEntropy(fromArray(rt, new Float32Array(12), [12]), fromArray(rt, [0], [1], 'i32'))).toThrow(/crossEntropy: .*\[N, V\].*\[12\]/);
    expect(() => crossEntropy(x, fromArray(rt, [0, 1, 2, 0], [4], 'f32'))).toThrow(DTypeError);
    expect(() => crossEntropy(x, fromArray(rt, [0, 1, 2, 0], [4], 'f32'))).toThrow(/crossEntropy labels: expected dtype i32, got f32/);
    expect(() => crossEntropy(x, fromArray(rt, [0, 1, 2, 0], [4], 'i32'), { reduction: 'avg' as 'mean' })).toThrow(UnsupportedError);
  });
});

describe('causalLmLoss', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  const [B, T, V] = [2, 9, 23];

  it('predicts labels[:, 1:] from logits[:, :-1], mean over counted tokens', async () => {
    const x = randn(B * T * V, 16, 2);
    // First positions masked as a prompt would be; row 1 right-padded.
    const labels = Int32Array.from(randu(B * T, 17, 0, V), (v, i) => (i % T < 3 || i >= 2 * T - 2 ? -100 : Math.floor(v)));
    const tl = fromArray(rt, labels, [B, T], 'i32');
    const tx = fromArray(rt, x, [B, T, V]);
    const shifted = shiftLabelsRef(labels, B, T);
    assertClose([await causalLmLoss(tx, tl).item()], crossEntropyRef(x, shifted, V), TOL.f32, 'causal mean');
    const sum = crossEntropyRef(x, shifted, V, -100, 'sum')[0] ?? 0;
    assertClose([await causalLmLoss(tx, tl, { numItemsInBatch: 20 }).item()], [sum / 20], TOL.f32, 'causal / numItemsInBatch');
    const r = await gradCheck(rt, (t) => causalLmLoss(t, tl), ([t]) => crossEntropyRef(t ?? [], shifted, V), [{ data: x, shape: [B, T, V] }]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'causal grad');
    // The last position of each sequence predicts nothing.
    for (let v = 0; v < V; v++) expect(r.grads[0]?.[(T - 1) * V + v]).toBe(0);
  });

  it('names the op and both shapes on mismatched labels', () => {
    const x = fromArray(rt, new Float32Array(B * T * V), [B, T, V]);
    expect(() => causalLmLoss(x, fromArray(rt, new Int32Array(B * (T - 1)), [B, T - 1], 'i32'))).toThrow(/causalLmLoss: .*labels \[2, 9\] for logits \[2, 9, 23\].*\[2, 8\]/);
    expect(() => causalLmLoss(x, fromArray(rt, new Int32Array(B * T), [B, T], 'i32'), { numItemsInBatch: 0 })).toThrow(UnsupportedError);
  });
});

describe('crossEntropy on the workgroup-memory reduction (no subgroups)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await createRuntime({ disableFeatures: ['subgroups'] });
  });
  afterAll(() => rt.destroy());

  it('matches the reference, forward and backward', async () => {
    for (const [N, V] of [
      [5, 1029],
      [300, 7],
    ] as const) {
      const x = randn(N * V, N, 3);
      const labels = makeLabels(N, V, V);
      const tl = fromArray(rt, labels, [N], 'i32');
      for (const reduction of reductions) {
        const got = await crossEntropy(fromArray(rt, x, [N, V]), tl, { reduction }).toArray();
        assertClose(got, crossEntropyRef(x, labels, V, -100, reduction), TOL.f32, `${reduction} [${N}, ${V}]`);
      }
    }
    const labels = makeLabels(6, 37, 8);
    const tl = fromArray(rt, labels, [6], 'i32');
    const r = await gradCheck(rt, (x) => crossEntropy(x, tl), ([x]) => crossEntropyRef(x ?? [], labels, 37), [{ data: randn(6 * 37, 7, 2), shape: [6, 37] }]);
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad');
  });
});
