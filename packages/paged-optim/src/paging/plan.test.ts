// Memory planning without a GPU: everything resident when it fits, staging slots plus a resident
// prefix under a budget, chunk sizes capped by the binding limit, and refusals with the numbers.
import { describe, expect, it } from 'vitest';
import { OutOfMemoryBudgetError } from '@peft-ts/errors';
import { planMemory } from './plan.js';
import type { StateField } from './state-region.js';

const F32_2 = [
  { name: 'exp_avg', elementBytes: 4, blockBytes: 0 },
  { name: 'exp_avg_sq', elementBytes: 4, blockBytes: 0 },
] satisfies StateField[];
const Q8 = [
  { name: 'state1', elementBytes: 1, blockBytes: 0 },
  { name: 'state2', elementBytes: 1, blockBytes: 0 },
  { name: 'absmax1', elementBytes: 0, blockBytes: 4 },
  { name: 'absmax2', elementBytes: 0, blockBytes: 4 },
] satisfies StateField[];
const GiB = 2 ** 30;

describe('planMemory', () => {
  it('keeps all state resident without paging options or when it fits', () => {
    const regions = [{ fields: F32_2, totalBlocks: 10 }];
    expect(planMemory(regions, 0, undefined, GiB)).toMatchObject({ residentBlocks: [10], slotBytes: 0 });
    expect(planMemory(regions, 0, { budgetBytes: 10 * 2048 }, GiB)).toMatchObject({ residentBlocks: [10], slotBytes: 0 });
  });

  it('reserves two staging slots and fills the rest of the budget with a resident prefix, region by region', () => {
    const regions = [
      { fields: Q8, totalBlocks: 100 },
      { fields: F32_2, totalBlocks: 10 },
    ];
    const plan = planMemory(regions, 2048, { budgetBytes: 2048 + 2 * 3072 + 50 * 520, chunkBytes: 5 * 520 }, GiB);
    // 8-bit chunk of 5 blocks: codes 2 x 1280 bytes, absmax 2 x 20 bytes padded to 256: 3072 bytes.
    expect(plan.chunkBlocks[0]).toBe(5);
    expect(plan.slotOffsets[0]).toEqual([0, 1280, 2560, 2816]);
    expect(plan.residentBlocks).toEqual([50, 0]);
    expect(plan.chunkBlocks[1]).toBe(1);
    expect(plan.slotBytes).toBe(3072);
    const gpu = 2048 + 2 * plan.slotBytes + 50 * 520;
    expect(gpu).toBeLessThanOrEqual(2048 + 2 * 3072 + 50 * 520);
  });

  it('caps a chunk at what one binding can hold', () => {
    const plan = planMemory([{ fields: F32_2, totalBlocks: 1000 }], 0, { budgetBytes: 1e9, chunkBytes: 1e9 / 4 }, 64 * 1024 + 256);
    // One field of 1024 bytes per block: 64 blocks per binding.
    expect(plan.chunkBlocks[0]).toBeLessThanOrEqual(64);
  });

  it('stays within every budget from the smallest to the whole state, paging what does not fit', () => {
    const regions = [
      { fields: Q8, totalBlocks: 37 },
      { fields: F32_2, totalBlocks: 9 },
    ];
    const fixed = 2048;
    const total = fixed + 37 * 520 + 9 * 2048;
    for (let budget = fixed + 2 * 2048; budget < total; budget += 777) {
      for (const chunkBytes of [undefined, 520, 3000]) {
        if (chunkBytes !== undefined && budget < fixed + 2 * 2 * 2048) continue;
        const plan = planMemory(regions, fixed, { budgetBytes: budget, ...(chunkBytes ? { chunkBytes } : {}) }, GiB);
        const r0 = plan.residentBlocks[0] ?? 0;
        const r1 = plan.residentBlocks[1] ?? 0;
        expect(fixed + 2 * plan.slotBytes + r0 * 520 + r1 * 2048).toBeLessThanOrEqual(budget);
        expect(plan.slotBytes).toBeGreaterThan(0);
        regions.forEach((r, i) => {
          const paged = r.totalBlocks - (plan.residentBlocks[i] ?? 0);
          const chunk = plan.chunkBlocks[i] ?? 0;
          expect(chunk).toBeLessThanOrEqual(paged);
          if (paged > 0) expect(chunk).toBeGreaterThan(0);
        });
      }
    }
  });

  it('refuses a budget below two one-block chunks, and bad settings', () => {
    const regions = [{ fields: F32_2, totalBlocks: 10 }];
    expect(() => planMemory(regions, 0, { budgetBytes: 4095 }, GiB)).toThrow(OutOfMemoryBudgetError);
    expect(() => planMemory(regions, 1000, { budgetBytes: 5000 }, GiB)).toThrow(/needs 4\.98 KiB but the budget is 4\.88 KiB/);
    expect(() => planMemory(regions, 0, { budgetBytes: -1 }, GiB)).toThrow(/budgetBytes/);
    expect(() => planMemory(regions, 0, { budgetBytes: 5000, chunkBytes: 0 }, GiB)).toThrow(/chunkBytes/);
  });
});
