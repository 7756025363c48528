// Paging optimizer state to host memory: results bit-identical to resident state for AdamW (f32
// and 8-bit) and SGD over several chunk sizes and budgets, GPU state bytes within the budget, and
// a budget too small for two one-block chunks refused with the numbers.
import { beforeAll, describe, expect, it } from 'vitest';
import { OutOfMemoryBudgetError } from '@peft-ts/errors';
import type { Runtime, Tensor } from '@peft-ts/tensor';
import { randn, testRuntime } from '@peft-ts/tensor/testing';
import { AdamW, SGD, type Optimizer, type GroupBase } from '../index.js';
import { gradFor, param, setGrad } from '../test-support/fixtures.js';

// Odd sizes: tail blocks, a size-1 tensor, an 8-bit-sized tensor that is not a block multiple.
const SHAPES = [[7, 13], [1], [4099], [3, 257], [600], [5000]];
const STEPS = 6;

type Make = (ps: Tensor[], paging?: { budgetBytes: number; chunkBytes?: number }) => Optimizer<GroupBase>;

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('paged optimizer state', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  /** Runs STEPS steps; returns parameters and state, byte for byte, and the peak optimizer bytes. */
  async function run(make: Make, paging?: { budgetBytes: number; chunkBytes?: number }): Promise<{ params: Uint8Array[]; state: Uint8Array[]; peak: number; paged: boolean }> {
    const ps = SHAPES.map((s, i) => param(rt, randn(s.reduce((a, b) => a * b, 1), 90 + i), s));
    const opt = make(ps, paging);
    const before = rt.memoryStats().byTag.optimizer;
    rt.resetPeak();
    for (let step = 0; step < STEPS; step++) {
      // Parameter 1 sits out one step: its chunks stream through unchanged.
      ps.forEach((p, i) => {
        if (i === 1 && step === 2) {
          p.grad?.dispose();
          p.grad = null;
        } else setGrad(p, gradFor(p.numel, i, step));
      });
      await opt.step();
      if (paging) expect(rt.memoryStats().byTag.optimizer - before).toBeLessThanOrEqual(paging.budgetBytes);
    }
    const peak = rt.memoryStats().peakByTag.optimizer - before;
    const params = await Promise.all(ps.map(async (p) => bytesOf(await p.toArray())));
    const state: Uint8Array[] = [];
    for (const p of ps) for (const v of Object.values(await opt.readState(p))) state.push(bytesOf(v));
    const paged = opt.isPaged;
    opt.dispose();
    for (const p of ps) p.dispose();
    return { params, state, peak, paged };
  }

  async function expectIdentical(make: Make, budgets: { budgetBytes: number; chunkBytes?: number }[]): Promise<void> {
    const resident = await run(make);
    expect(resident.paged).toBe(false);
    for (const paging of budgets) {
      const paged = await run(make, paging);
      expect(paged.paged).toBe(true);
      expect(paged.peak).toBeLessThanOrEqual(paging.budgetBytes);
      paged.params.forEach((b, i) => expect(Buffer.compare(b, resident.params[i] ?? new Uint8Array()), `param ${i} with ${JSON.stringify(paging)}`).toBe(0));
      paged.state.forEach((b, i) => expect(Buffer.compare(b, resident.state[i] ?? new Uint8Array()), `state ${i} with ${JSON.stringify(paging)}`).toBe(0));
    }
  }

  it('AdamW (f32 state): paged equals resident bit for bit, for chunks of 1, 3 and an odd number of bytes', async () => {
    // The whole state is 8 bytes/element over 46 blocks of 256 elements: 94208 bytes.
    await expectIdentical(
      (ps, paging) => new AdamW(ps, { lr: 1e-2, weightDecay: 0.01, ...(paging ? { paging } : {}) }),
      [
        { budgetBytes: 4096, chunkBytes: 2048 }, // one block per chunk, nothing resident
        { budgetBytes: 30000, chunkBytes: 3 * 2048 }, // some blocks resident, three per chunk
        { budgetBytes: 50000, chunkBytes: 9999 }, // an odd chunk size rounds down to whole blocks
        { budgetBytes: 60000 }, // default chunk size
      ],
    );
  });

  it('AdamW with 8-bit state (and its f32 small tensors): paged equals resident bit for bit', async () => {
    await expectIdentical(
      (ps, paging) => new AdamW(ps, { lr: 1e-3, bits: 8, ...(paging ? { paging } : {}) }),
      [
        { budgetBytes: 2048 + 2 * 2048, chunkBytes: 520 }, // the code maps and one-block slots
        { budgetBytes: 20000, chunkBytes: 5 * 520 + 7 },
      ],
    );
  });

  it('SGD with momentum: paged equals resident bit for bit', async () => {
    await expectIdentical((ps, paging) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, ...(paging ? { paging } : {}) }), [
      { budgetBytes: 2048, chunkBytes: 1024 },
      { budgetBytes: 20000, chunkBytes: 4000 },
    ]);
  });

  it('keeps everything resident when the state fits the budget', async () => {
    const p = param(rt, randn(1000, 1), [1000]);
    const opt = new AdamW([p], { paging: { budgetBytes: 1 << 20 } });
    setGrad(p, gradFor(1000, 0, 0));
    await opt.step();
    expect(opt.isPaged).toBe(false);
    expect(opt.stateBytes()).toEqual({ resident: 8 * 1024, host: 0, staging: 0, other: 0, gpu: 8 * 1024 });
    opt.dispose();
  });

  it('reports where the state lives when paged', async () => {
    const p = param(rt, randn(10 * 256, 1), [10, 256]);
    const opt = new AdamW([p], { paging: { budgetBytes: 3 * 2048 + 2 * 2048, chunkBytes: 2048 } });
    setGrad(p, gradFor(p.numel, 0, 0));
    await opt.step();
    // Two one-block staging slots, three resident blocks, seven blocks in host memory.
    expect(opt.stateBytes()).toEqual({ resident: 3 * 2048, host: 7 * 2048, staging: 2 * 2048, other: 0, gpu: 5 * 2048 });
    opt.dispose();
  });

  it('refuses a second step() while a paged step is still streaming', async () => {
    const p = param(rt, randn(4000, 1), [4000]);
    const opt = new AdamW([p], { paging: { budgetBytes: 4096, chunkBytes: 2048 } });
    setGrad(p, gradFor(4000, 0, 0));
    const first = opt.step();
    await expect(opt.step()).rejects.toThrow(/previous step\(\) has not finished/);
    await first;
    expect(opt.stepCount(p)).toBe(1);
    opt.dispose();
  });

  it('refuses a budget too small for two one-block chunks, naming the budget and the need', async () => {
    const p = param(rt, randn(5000, 1), [5000]);
    const opt = new AdamW([p], { paging: { budgetBytes: 3000 } });
    setGrad(p, gradFor(5000, 0, 0));
    const error: unknown = await opt.step().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutOfMemoryBudgetError);
    const oom = error as OutOfMemoryBudgetError;
    expect(oom.budgetBytes).toBe(3000);
    expect(oom.requestedBytes).toBe(2 * 2048);
    expect(oom.message).toMatch(/paged optimizer state: needs 4\.00 KiB but the budget is 2\.93 KiB/);
    // A chunk size that cannot fit twice is refused too.
    const opt2 = new AdamW([p], { paging: { budgetBytes: 10000, chunkBytes: 8192 } });
    await expect(opt2.step()).rejects.toThrow(/needs 16\.0 KiB but the budget is 9\.77 KiB/);
    // A refused 8-bit plan leaves no code maps behind.
    const before = rt.memoryStats().byTag.optimizer;
    const opt3 = new AdamW([p], { bits: 8, min8bitSize: 1, paging: { budgetBytes: 3000 } });
    await expect(opt3.step()).rejects.toThrow(OutOfMemoryBudgetError);
    expect(rt.memoryStats().byTag.optimizer).toBe(before);
    for (const o of [opt, opt2, opt3]) o.dispose();
  });
});
