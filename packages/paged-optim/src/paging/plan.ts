// How optimizer state is split between GPU memory and host memory under a byte budget: which
// blocks stay resident, how many blocks a streamed chunk holds, and the two staging slots' layout.
import { OutOfMemoryBudgetError, UnsupportedError, formatBytes } from '@peft-ts/errors';
import { BLOCK } from '../multi-tensor/work-items.js';
import { blockBytesOf, fieldBlockBytes, type StateField } from './state-region.js';

/** Paging settings: a GPU byte budget for optimizer state, and optionally the streamed chunk size. */
export interface PagingOptions {
  /**
   * GPU bytes optimizer state may occupy (resident state plus the two staging chunks, as counted
   * under the 'optimizer' tag). State beyond it lives in host memory and streams through the GPU.
   */
  budgetBytes: number;
  /** Bytes of state per streamed chunk (default: a quarter of the budget, at most 64 MiB). */
  chunkBytes?: number;
}

export interface RegionDemand {
  fields: readonly StateField[];
  totalBlocks: number;
}

export interface MemoryPlan {
  /** Per region: blocks kept on the GPU (a prefix), and blocks per streamed chunk (0 when none are paged). */
  residentBlocks: number[];
  chunkBlocks: number[];
  /** Bytes of each of the two staging slots (0 when nothing is paged). */
  slotBytes: number;
  /** Per region: byte offset of each field inside a staging slot. */
  slotOffsets: number[][];
}

const SLOT_ALIGN = 256;
const DEFAULT_MAX_CHUNK = 64 * 1024 * 1024;

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function slotLayout(fields: readonly StateField[], blocks: number): { offsets: number[]; bytes: number } {
  const offsets: number[] = [];
  let at = 0;
  for (const f of fields) {
    offsets.push(at);
    at += alignUp(blocks * fieldBlockBytes(f), SLOT_ALIGN);
  }
  return { offsets, bytes: at };
}

/**
 * Plans state placement. Without paging options (or when everything fits) all state is resident.
 * `fixedBytes` are other optimizer-tagged buffers that count against the budget.
 */
export function planMemory(regions: readonly RegionDemand[], fixedBytes: number, paging: PagingOptions | undefined, maxBindingBytes: number): MemoryPlan {
  const stateBytes = regions.reduce((s, r) => s + r.totalBlocks * blockBytesOf(r.fields), 0);
  const allResident: MemoryPlan = {
    residentBlocks: regions.map((r) => r.totalBlocks),
    chunkBlocks: regions.map(() => 0),
    slotBytes: 0,
    slotOffsets: regions.map((r) => r.fields.map(() => 0)),
  };
  if (!paging) return allResident;
  const { budgetBytes } = paging;
  if (!(budgetBytes >= 0) || !Number.isFinite(budgetBytes)) {
    throw new UnsupportedError({ what: 'paging budgetBytes', got: budgetBytes, where: 'optimizer paging', supported: ['a finite number of bytes >= 0'] });
  }
  if (paging.chunkBytes !== undefined && !(paging.chunkBytes > 0)) {
    throw new UnsupportedError({ what: 'paging chunkBytes', got: paging.chunkBytes, where: 'optimizer paging', supported: ['a positive number of bytes'] });
  }
  if (fixedBytes + stateBytes <= budgetBytes) return allResident;

  const pageable = regions.filter((r) => r.totalBlocks > 0 && r.fields.length > 0);
  const minSlot = Math.max(0, ...pageable.map((r) => slotLayout(r.fields, 1).bytes));
  const budget = budgetBytes - fixedBytes;
  const need = (slot: number, why: string): never => {
    throw new OutOfMemoryBudgetError({
      what: 'paged optimizer state',
      requestedBytes: fixedBytes + 2 * slot,
      budgetBytes,
      detail: `${why}; the whole state needs ${formatBytes(fixedBytes + stateBytes)}`,
    });
  };
  if (2 * minSlot > budget) need(minSlot, `two staging chunks of one ${BLOCK}-element block (${formatBytes(minSlot)} each) must fit in it`);

  const chunkTarget = paging.chunkBytes ?? Math.min(DEFAULT_MAX_CHUNK, Math.max(minSlot, Math.floor(budget / 4)));
  const chunkBlocks = regions.map((r) => {
    if (r.totalBlocks === 0 || r.fields.length === 0) return 0;
    const widest = Math.max(...r.fields.map(fieldBlockBytes));
    const bindable = Math.max(1, Math.floor((maxBindingBytes - SLOT_ALIGN) / widest));
    return Math.max(1, Math.min(r.totalBlocks, bindable, Math.floor(chunkTarget / blockBytesOf(r.fields))));
  });
  let slotBytes = Math.max(0, ...regions.map((r, i) => (chunkBlocks[i] ? slotLayout(r.fields, chunkBlocks[i] ?? 0).bytes : 0)));
  if (2 * slotBytes > budget) need(slotBytes, `two staging chunks of ${formatBytes(slotBytes)} (chunkBytes ${paging.chunkBytes ?? chunkTarget}) must fit in it`);

  let left = budget - 2 * slotBytes;
  const residentBlocks = regions.map((r) => {
    const per = blockBytesOf(r.fields);
    if (per === 0) return r.totalBlocks;
    const blocks = Math.min(r.totalBlocks, Math.floor(left / per));
    left -= blocks * per;
    return blocks;
  });
  // Size the slots for the regions that actually stream, never for more blocks than they page.
  const finalChunks = regions.map((r, i) => Math.min(chunkBlocks[i] ?? 0, r.totalBlocks - (residentBlocks[i] ?? 0)));
  slotBytes = Math.max(0, ...regions.map((r, i) => ((finalChunks[i] ?? 0) > 0 ? slotLayout(r.fields, finalChunks[i] ?? 0).bytes : 0)));
  return {
    residentBlocks,
    chunkBlocks: finalChunks,
    slotBytes,
    slotOffsets: regions.map((r, i) => slotLayout(r.fields, finalChunks[i] ?? 0).offsets),
  };
}
