// KV-cache attention against the float64 reference: a prompt then single-token steps, GQA,
// padding masks, sliding windows and a cache longer than one key chunk.
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeMismatchError } from '@peft-ts/errors';
import { decodeAttention, fromArray, KvCache, type Runtime } from '../../index.js';
import { assertClose, randn, testRuntime } from '../../testing/index.js';
import { decodeAttentionRef } from './decode-attention.ref.js';

describe('decodeAttention', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  const run = async (o: { b: number; hq: number; hkv: number; d: number; maxT: number; steps: number[]; window?: number; mask?: Int32Array }) => {
    const cache = new KvCache(rt, o.b, o.maxT, o.hkv, o.d);
    const kAll = new Float32Array(o.b * o.maxT * o.hkv * o.d);
    const vAll = new Float32Array(kAll.length);
    const maskT = o.mask ? fromArray(rt, o.mask, [o.b, o.maxT], 'i32') : undefined;
    let seed = 100;
    for (const tq of o.steps) {
      const k = randn(o.b * tq * o.hkv * o.d, seed++);
      const v = randn(k.length, seed++);
      const q = randn(o.b * tq * o.hq * o.d, seed++);
      const row = o.hkv * o.d;
      for (let bi = 0; bi < o.b; bi++) {
        kAll.set(k.subarray(bi * tq * row, (bi + 1) * tq * row), (bi * o.maxT + cache.length) * row);
        vAll.set(v.subarray(bi * tq * row, (bi + 1) * tq * row), (bi * o.maxT + cache.length) * row);
      }
      cache.append(fromArray(rt, k, [o.b, tq, o.hkv, o.d]), fromArray(rt, v, [o.b, tq, o.hkv, o.d]));
      const opts = { ...(maskT ? { attentionMask: maskT } : {}), ...(o.window ? { slidingWindow: o.window } : {}) };
      const out = await decodeAttention(fromArray(rt, q, [o.b, tq, o.hq, o.d]), cache, opts).toArray();
      const ref = decodeAttentionRef(q, kAll, vAll, { b: o.b, tq, hq: o.hq, hkv: o.hkv, d: o.d, maxT: o.maxT, len: cache.length, ...(o.window ? { window: o.window } : {}), ...(o.mask ? { mask: o.mask } : {}) });
      // f32 dot products over D terms and softmax sums over up to len terms.
      assertClose(out, ref, { atol: 2e-6, rtol: 2e-5 }, `step of ${tq} at length ${cache.length}`);
    }
    cache.dispose();
  };

  it('matches the reference for a prompt followed by single-token steps, with GQA', async () => {
    await run({ b: 2, hq: 4, hkv: 2, d: 6, maxT: 16, steps: [7, 1, 1, 1] });
  });

  it('honours padding masks and sliding windows', async () => {
    const mask = new Int32Array(2 * 12).fill(1);
    mask[0] = 0;
    mask[1] = 0; // row 0 left-padded by two
    await run({ b: 2, hq: 3, hkv: 1, d: 8, maxT: 12, steps: [5, 1, 1], mask });
    await run({ b: 1, hq: 2, hkv: 2, d: 8, maxT: 12, steps: [6, 1, 1], window: 3 });
  });

  it('handles caches longer than one key chunk and head dims above the lane count', async () => {
    await run({ b: 1, hq: 2, hkv: 1, d: 72, maxT: 1300, steps: [1200, 1] });
  });

  it('rejects a query batch that does not fit the cache', () => {
    const cache = new KvCache(rt, 1, 4, 1, 8);
    expect(() => cache.append(fromArray(rt, new Float32Array(40), [1, 5, 1, 8]), fromArray(rt, new Float32Array(40), [1, 5, 1, 8]))).toThrow(ShapeMismatchError);
    expect(() => decodeAttention(fromArray(rt, new Float32Array(8), [1, 1, 1, 8]), cache)).toThrow(/decodeAttention/);
    cache.dispose();
  });
});
