// embedding: lookups against the reference (f32/f16/bf16 tables, tables split across bindings,
// out-of-range ids), and the deterministic scatter-add gradient against finite differences and
// against an in-order float32 sum.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { backward, embedding, fromArray, type Runtime, type Tensor } from '../../../index.js';
import { assertClose, gradCheck, randn, rng, testRuntime, TOL } from '../../../testing/index.js';
import { embeddingGradRef, embeddingRef } from './embedding.ref.js';

/** The gradient a backward pass left on `t` (fails the test when there is none). */
function gradOf(t: Tensor): Tensor {
  if (!t.grad) throw new Error(`${t.toString()} has no gradient`);
  return t.grad;
}

describe('embedding', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('gathers rows of f32, f16 and bf16 tables exactly', async () => {
    const vocab = 150;
    const dim = 37;
    const w = randn(vocab * dim, 400);
    const ids = Int32Array.from([5, 0, 149, 5, 77, 3, 3, 120, 1, 0, 64, 63, 128, 127]);
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const tw = fromArray(rt, w, [vocab, dim], dtype);
      const tids = fromArray(rt, ids, [2, 7], 'i32');
      const out = embedding(tids, tw);
      expect(out.shape).toEqual([2, 7, dim]);
      expect(Array.from(await out.toArray())).toEqual(Array.from(embeddingRef(ids, await tw.toArray(), dim)));
      for (const t of [tw, tids, out]) t.dispose();
    }
  });

  it('reads a table split across several bindings (lowered limit) with the same result', async () => {
    const vocab = 150;
    const dim = 37;
    const w = randn(vocab * dim, 401);
    const ids = Int32Array.from([0, 63, 64, 127, 128, 149, 7, 100, 140, 149, -3, 150]);
    // f32 rows are 148 bytes: with 256-byte offset alignment chunks hold multiples of 64 rows,
    // so 10000 bytes gives chunks of 64, 64 and 22 rows; bf16 rows (74 bytes) go by 128.
    for (const [dtype, chunks] of [['f32', 3], ['bf16', 2]] as const) {
      const tw = fromArray(rt, w, [vocab, dim], dtype);
      const tids = fromArray(rt, ids, [12], 'i32');
      const before = rt.totalDispatches;
      const out = embedding(tids, tw, { maxBindingBytes: 10000 });
      expect(rt.totalDispatches - before).toBe(chunks);
      const got = await out.toArray();
      const expected = embeddingRef(ids, await tw.toArray(), dim);
      expect(Array.from(got)).toEqual(Array.from(expected));
      // Ids outside the vocabulary give NaN rows.
      expect(got.slice(10 * dim).every((v) => Number.isNaN(v))).toBe(true);
    }
  });

  it('backward matches finite differences, with repeated ids', async () => {
    const vocab = 11;
    const dim = 6;
    const idsHost = Int32Array.from([3, 1, 3, 3, 0, 10, 1, 3, 7]);
    const ids = fromArray(rt, idsHost, [3, 3], 'i32');
    const r = await gradCheck(rt, (w) => embedding(ids, w), ([w]) => embeddingRef(idsHost, w ?? [], dim), [{ data: randn(vocab * dim, 402), shape: [vocab, dim] }]);
    assertClose(r.output, r.expectedOutput, TOL.f32, 'output');
    assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad weight');
  });

  it('sums each id in token order, deterministically, across split bindings', async () => {
    const vocab = 150;
    const dim = 37;
    const tokens = 300;
    // Skewed ids: a few very frequent ones (long segments) and many rare ones.
    const r = rng(403);
    const idsHost = Int32Array.from({ length: tokens }, (_, i) => (i % 3 === 0 ? 149 : i % 5 === 0 ? 64 : Math.floor(r() * vocab)));
    const g = randn(tokens * dim, 404);
    const expected = new Float32Array(vocab * dim);
    for (let t = 0; t < tokens; t++) {
      const id = idsHost[t] ?? 0;
      for (let c = 0; c < dim; c++) expected[id * dim + c] = Math.fround((expected[id * dim + c] ?? 0) + (g[t * dim + c] ?? 0));
    }
    const runs: Float32Array[] = [];
    for (const maxBindingBytes of [undefined, 10000, 10000]) {
      const w = fromArray(rt, new Float32Array(vocab * dim), [vocab, dim], 'f32', { requiresGrad: true });
      const ids = fromArray(rt, idsHost, [tokens], 'i32');
      backward(embedding(ids, w, maxBindingBytes === undefined ? {} : { maxBindingBytes }), fromArray(rt, g, [tokens, dim]));
      runs.push((await gradOf(w).toArray()) as Float32Array);
      w.dispose();
      ids.dispose();
    }
    for (const got of runs) expect(Array.from(got)).toEqual(Array.from(expected));
  });

  it('leaves the padding id without gradient and skips out-of-range ids', async () => {
    const vocab = 9;
    const dim = 5;
    const idsHost = Int32Array.from([2, 0, 0, 8, 2, 0, 4, 12]);
    const g = randn(idsHost.length * dim, 405);
    const w = fromArray(rt, randn(vocab * dim, 406), [vocab, dim], 'bf16', { requiresGrad: true });
    backward(embedding(fromArray(rt, idsHost, [2, 4], 'i32'), w, { paddingIdx: 0 }), fromArray(rt, g, [2, 4, dim]));
    const got = await gradOf(w).toArray();
    assertClose(got, embeddingGradRef(idsHost, g, vocab, dim, 0), TOL.f32, 'grad with padding');
    expect(Array.from(got.slice(0, dim))).toEqual([0, 0, 0, 0, 0]);
  });

  it('records nothing for a frozen table', () => {
    const w = fromArray(rt, randn(20, 407), [4, 5]);
    const out = embedding(fromArray(rt, [1, 2], [2], 'i32'), w);
    expect(out.requiresGrad).toBe(false);
    expect(out.gradFn).toBeNull();
  });

  it('names the op and the shapes on bad arguments', () => {
    const w = fromArray(rt, new Float32Array(20), [20]);
    const ids = fromArray(rt, [1, 2, 3], [3], 'i32');
    expect(() => embedding(ids, w)).toThrow(ShapeMismatchError);
    expect(() => embedding(ids, w)).toThrow(/embedding: .*\[3\].*\[20\]/);
    expect(() => embedding(fromArray(rt, [1, 2], [2]), fromArray(rt, new Float32Array(20), [4, 5]))).toThrow(DTypeError);
  });
});
