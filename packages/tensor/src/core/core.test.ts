// Core behaviour: creation and readback in every dtype, pooling and memory accounting, tidy
// scopes, the autograd tape (accumulation, frozen inputs, checkpointing) and leak freedom.
import { beforeAll, describe, expect, it } from 'vitest';
import { OutOfMemoryBudgetError, PeftError } from '@peft-ts/errors';
import {
  add,
  backward,
  checkpoint,
  fromArray,
  full,
  matmul,
  mul,
  noGrad,
  sizeClass,
  sub,
  tidy,
  zeros,
  f32ToBf16Bits,
  f32ToF16Bits,
  f16WordsToF32,
  bf16WordsToF32,
  type Runtime,
  type Tensor,
} from '../index.js';
import { randn, testRuntime } from '../testing/index.js';

describe('tensor core', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('round-trips host data in every dtype', async () => {
    const f = randn(37, 1);
    expect(Array.from(await fromArray(rt, f, [37]).toArray())).toEqual(Array.from(f));
    const i = Int32Array.from({ length: 9 }, (_, k) => k * 1000 - 4000);
    expect(Array.from(await fromArray(rt, i, [3, 3], 'i32').toArray())).toEqual(Array.from(i));
    const u8 = Uint8Array.from({ length: 7 }, (_, k) => k * 37);
    expect(Array.from(await fromArray(rt, u8, [7], 'u8').toArray())).toEqual(Array.from(u8));
    for (const dtype of ['f16', 'bf16'] as const) {
      const t = fromArray(rt, f, [37], dtype);
      const words = (await t.toRaw()) as Uint16Array;
      const conv = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
      expect(Array.from(words)).toEqual(Array.from(f, conv));
      const widened = dtype === 'f16' ? f16WordsToF32(words) : bf16WordsToF32(words);
      expect(Array.from(await t.toArray())).toEqual(Array.from(widened));
    }
  });

  it('fills constants, including 16-bit and 8-bit dtypes with odd lengths', async () => {
    expect(Array.from(await full(rt, [5], 2.5).toArray())).toEqual([2.5, 2.5, 2.5, 2.5, 2.5]);
    expect(Array.from(await full(rt, [3], -1.5, 'f16').toArray())).toEqual([-1.5, -1.5, -1.5]);
    expect(Array.from(await full(rt, [5], 7, 'u8').toArray())).toEqual([7, 7, 7, 7, 7]);
    expect(Array.from(await zeros(rt, [2, 2], 'i32').toArray())).toEqual([0, 0, 0, 0]);
  });

  it('converts f32 to f16 and bf16 with round-to-nearest-even, keeping NaN and Inf', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
    // 1 + 2^-8 lies halfway between bf16 1 and 1 + 2^-7: ties go to even (1).
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f16WordsToF32(Uint16Array.of(0x7c00, 0xfc00, 0x0001))).toEqual(Float32Array.of(Infinity, -Infinity, 2 ** -24));
  });

  it('pools buffers by size class and accounts live and peak bytes by tag', async () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(1000)).toBe(1024);
    expect(sizeClass(5000)).toBe(5120);
    await rt.sync();
    const before = rt.memoryStats();
    const w = zeros(rt, [1000], 'f32', { tag: 'weights' });
    const g = zeros(rt, [500], 'f32', { tag: 'grads' });
    const s = rt.memoryStats();
    expect(s.byTag.weights - before.byTag.weights).toBe(4000);
    expect(s.byTag.grads - before.byTag.grads).toBe(2000);
    expect(s.liveBytes - before.liveBytes).toBe(6000);
    rt.resetPeak();
    w.dispose();
    g.dispose();
    expect(rt.memoryStats().liveBytes).toBe(before.liveBytes);
    expect(rt.memoryStats().peakBytes).toBe(before.liveBytes + 6000);
    await rt.sync();
    // A released buffer is reused after the next submit instead of allocating a new one.
    const allocated = rt.memoryStats().allocatedBytes;
    const again = zeros(rt, [1000], 'f32', { tag: 'weights' });
    expect(rt.memoryStats().allocatedBytes).toBe(allocated);
    again.dispose();
  });

  it('refuses allocations past the memory budget with OutOfMemoryBudgetError', () => {
    rt.setMemoryBudget(rt.memoryStats().liveBytes + 1024);
    try {
      expect(() => zeros(rt, [1024])).toThrow(OutOfMemoryBudgetError);
      expect(() => zeros(rt, [1024])).toThrow(/tensor \[1024\] f32: needs/);
    } finally {
      rt.setMemoryBudget(undefined);
    }
  });

  it('tidy disposes what it does not return, and a disposed tensor fails clearly', async () => {
    const base = rt.memoryStats().liveBytes;
    let inner: Tensor | undefined;
    const kept = tidy(() => {
      const a = fromArray(rt, [1, 2, 3], [3]);
      inner = add(a, a);
      return mul(inner, 2);
    });
    expect(Array.from(await kept.toArray())).toEqual([4, 8, 12]);
    expect(inner?.disposed).toBe(true);
    expect(() => inner?.binding()).toThrow(PeftError);
    kept.dispose();
    expect(rt.memoryStats().liveBytes).toBe(base);
  });

  it('accumulates gradients over backward calls and gives frozen inputs none', async () => {
    const x = fromArray(rt, [1, 2, 3], [3], 'f32', { requiresGrad: true });
    const frozen = fromArray(rt, [4, 5, 6], [3]);
    for (let k = 0; k < 2; k++) {
      tidy(() => {
        const y = mul(mul(x, frozen), x); // d/dx = 2 * x * frozen
        backward(y, fromArray(rt, [1, 1, 1], [3]));
      });
    }
    expect(Array.from((await x.grad?.toArray()) ?? [])).toEqual([16, 40, 72]);
    expect(frozen.grad).toBeNull();
    expect(x.grad?.storage.tag).toBe('grads');
  });

  it('checkpoint recomputes the block in backward and gives the same gradients', async () => {
    const block = (h: Tensor, w: Tensor) => sub(mul(mul(h, w), h), w);
    const data = randn(19, 3);
    const wData = randn(19, 4);
    const grads: number[][] = [];
    for (const useCheckpoint of [false, true]) {
      const h0 = fromArray(rt, data, [19], 'f32', { requiresGrad: true });
      const w = fromArray(rt, wData, [19], 'f32', { requiresGrad: true });
      tidy(() => {
        const y = useCheckpoint ? checkpoint((h) => block(h, w), h0) : block(h0, w);
        backward(y, fromArray(rt, new Float32Array(19).fill(1), [19]));
      });
      grads.push([...(await h0.grad?.toArray() ?? []), ...(await w.grad?.toArray() ?? [])]);
      h0.dispose();
      w.dispose();
    }
    expect(grads[1]).toEqual(grads[0]);
  });

  it('checkpointed blocks free their recomputed activations block by block during backward', async () => {
    const n = 4096;
    // Four n-element intermediates per block.
    const block = (h: Tensor, w: Tensor) => mul(add(mul(h, w), w), sub(mul(h, h), w));
    const w = fromArray(rt, randn(n, 5), [n], 'f32', { requiresGrad: true, tag: 'weights' }).keep();
    const backwardPeak = async (blocks: number, scoped: boolean): Promise<{ peak: number; leaked: number }> => {
      await rt.sync();
      const before = rt.memoryStats().liveBytes;
      const h0 = fromArray(rt, randn(n, 6), [n], 'f32', { requiresGrad: true });
      let h = h0;
      const outs: Tensor[] = [];
      for (let b = 0; b < blocks; b++) {
        h = checkpoint((x) => block(x, w), h);
        outs.push(h);
      }
      const seed = fromArray(rt, new Float32Array(n).fill(1e-3), [n]);
      rt.resetPeak();
      if (scoped) tidy(() => backward(h, seed));
      else backward(h, seed);
      await rt.sync();
      const peak = rt.memoryStats().peakBytes;
      for (const t of [...outs, h0, seed]) t.dispose();
      h0.grad?.dispose();
      h0.grad = null;
      w.grad?.dispose();
      w.grad = null;
      await rt.sync();
      return { peak, leaked: rt.memoryStats().liveBytes - before };
    };
    for (const scoped of [false, true]) {
      const two = await backwardPeak(2, scoped);
      const eight = await backwardPeak(8, scoped);
      // Six more blocks add their checkpointed outputs (n floats each) and nothing else: no block's
      // activations outlive its own backward (they would add 4 * n floats per block).
      expect(eight.peak - two.peak).toBeLessThanOrEqual(6 * n * 4);
      expect(two.leaked).toBe(0);
      expect(eight.leaked).toBe(0);
    }
    w.dispose();
  });

  it('does not record under noGrad and rejects backward through a freed graph', () => {
    const x = fromArray(rt, [1, 2], [2], 'f32', { requiresGrad: true });
    const y = noGrad(() => mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    const z = mul(x, x);
    const g = fromArray(rt, [1, 1], [2]);
    backward(z, g);
    expect(() => backward(z, g)).toThrow(/already freed/);
  });

  it('returns memory to its baseline after 100 forward/backward steps', async () => {
    const w = fromArray(rt, randn(64, 9), [64], 'f32', { requiresGrad: true, tag: 'weights' }).keep();
    const bias = fromArray(rt, randn(64, 10), [64], 'f32', { requiresGrad: true, tag: 'weights' }).keep();
    const input = fromArray(rt, randn(8 * 64, 11), [8, 64]).keep();
    const step = () =>
      tidy(() => {
        const h = add(mul(input, w), bias);
        const y = mul(h, h);
        backward(y, full(rt, y.shape, 1 / y.numel));
      });
    step();
    await rt.sync();
    const baseline = rt.memoryStats();
    for (let i = 0; i < 100; i++) step();
    await rt.sync();
    const after = rt.memoryStats();
    expect(after.liveBytes).toBe(baseline.liveBytes);
    expect(after.liveBuffers).toBe(baseline.liveBuffers);
    expect(after.allocatedBytes).toBe(baseline.allocatedBytes);
    w.dispose();
    bias.dispose();
    input.dispose();
  });
});

describe('kernel profiling', () => {
  it('attributes GPU time to each kernel by name, one entry per dispatch, and stops when turned off', async () => {
    const rt = await testRuntime();
    if (!rt.has('timestamp-query')) {
      // Without timestamps profiling is refused up front rather than giving zeros.
      expect(() => rt.setProfiling(true)).toThrow(/timestamp-query/);
      return;
    }
    rt.setProfiling(true);
    const a = fromArray(rt, randn(64 * 48, 3), [64, 48]);
    const b = fromArray(rt, randn(48 * 40, 4), [48, 40]);
    for (let i = 0; i < 3; i++) matmul(a, b).dispose();
    add(a, a).dispose();
    const profile = await rt.kernelProfile(true);
    const mm = profile.find((k) => k.kernel.startsWith('matmul'));
    expect(mm?.dispatches).toBe(3);
    expect(mm?.ms).toBeGreaterThan(0);
    expect(profile.reduce((s, k) => s + k.dispatches, 0)).toBe(4);
    rt.setProfiling(false);
    matmul(a, b).dispose();
    expect(await rt.kernelProfile()).toEqual([]);
    // Results are unchanged by the extra passes.
    const plain = await matmul(a, b).toArray();
    rt.setProfiling(true);
    expect(Array.from(await matmul(a, b).toArray())).toEqual(Array.from(plain));
    rt.setProfiling(false);
  });
});
