// Multi-tensor dispatch planning: ranges of many tensors become work items (one per tensor
// range), packed into dispatches of a few slots each and described to the GPU by a metadata table.
import type { BufferBinding, Tensor } from '@peft-ts/tensor';

/** Elements per state block: the unit of work of one workgroup and of 8-bit quantization. */
export const BLOCK = 256;

/** Words per work item in the metadata table. */
export const ITEM_WORDS = 16;
/** Per-item f32 scalars (words 8..15). */
export const ITEM_SCALARS = 8;

/** A range of one tensor (and its companions, e.g. a parameter and its gradient) to process. */
export interface WorkItem {
  /** Tensors bound in this item's slot, in the kernel's operand order (e.g. [param, grad]). */
  operands: readonly Tensor[];
  /** First element covered (a multiple of the kernel's block size) and how many elements are valid. */
  start: number;
  count: number;
  /** Workgroups this item takes: ceil(count / blockElems). */
  blocks: number;
  /** Block index, in the state space being bound, of this item's first block. */
  stateBlock: number;
  /** Kernel-specific flag bits. */
  flags: number;
  /** Kernel-specific f32 scalars (at most ITEM_SCALARS). */
  scalars: readonly number[];
}

export interface PackedDispatch {
  items: WorkItem[];
  /** First workgroup of each item, relative to the dispatch. */
  wgStarts: number[];
  totalWorkgroups: number;
  /** State blocks [stateStart, stateEnd) the dispatch's items touch. */
  stateStart: number;
  stateEnd: number;
}

export interface PackLimits {
  /** Slots per dispatch. */
  maxItems: number;
  /** Most state blocks one dispatch may span (so each state binding stays under the binding limit). */
  maxStateBlocks: number;
  /** Most workgroups per dispatch. */
  maxWorkgroups: number;
}

/**
 * Splits [start, start + count) of a tensor into pieces of at most `maxElements` (a multiple of
 * `blockElems`), so that a binding window over one piece stays under the binding limit.
 */
export function splitRange(start: number, count: number, maxElements: number, blockElems: number): [number, number][] {
  const step = Math.max(blockElems, Math.floor(maxElements / blockElems) * blockElems);
  const out: [number, number][] = [];
  for (let at = 0; at < count; at += step) out.push([start + at, Math.min(step, count - at)]);
  return out;
}

/**
 * Packs items (in state order) into dispatches: at most `maxItems` per dispatch, a bounded state
 * span and workgroup count, and never two items whose operands share a GPU buffer (two writable
 * bindings of one buffer in one dispatch would alias).
 */
export function packItems(items: readonly WorkItem[], limits: PackLimits): PackedDispatch[] {
  const out: PackedDispatch[] = [];
  let cur: PackedDispatch | null = null;
  let buffers = new Set<GPUBuffer>();
  for (const item of items) {
    const itemBuffers = item.operands.map((t) => t.binding().buffer);
    const fits =
      cur !== null &&
      cur.items.length < limits.maxItems &&
      cur.totalWorkgroups + item.blocks <= limits.maxWorkgroups &&
      Math.max(cur.stateEnd, item.stateBlock + item.blocks) - Math.min(cur.stateStart, item.stateBlock) <= limits.maxStateBlocks &&
      !itemBuffers.some((b) => buffers.has(b));
    if (!fits || cur === null) {
      cur = { items: [], wgStarts: [], totalWorkgroups: 0, stateStart: item.stateBlock, stateEnd: item.stateBlock };
      buffers = new Set();
      out.push(cur);
    }
    cur.items.push(item);
    cur.wgStarts.push(cur.totalWorkgroups);
    cur.totalWorkgroups += item.blocks;
    cur.stateStart = Math.min(cur.stateStart, item.stateBlock);
    cur.stateEnd = Math.max(cur.stateEnd, item.stateBlock + item.blocks);
    for (const b of itemBuffers) buffers.add(b);
  }
  return out;
}

/** A binding window over `count` f32 elements of `t` from element `start`, aligned as bindings must be. */
export function operandWindow(t: Tensor, start: number, count: number, align: number): { binding: BufferBinding; base: number } {
  const whole = t.binding();
  const byteStart = whole.offset + start * 4;
  const offset = byteStart - (byteStart % align);
  const base = (byteStart - offset) / 4;
  return { binding: { buffer: whole.buffer, offset, size: (base + Math.max(1, count)) * 4 }, base };
}

/** Appends the dispatch's items to `words` (ITEM_WORDS each); slot k holds item k. */
export function encodeItems(d: PackedDispatch, bases: readonly (readonly number[])[], words: Uint32Array, at: number): void {
  const f32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  d.items.forEach((item, k) => {
    const o = (at + k) * ITEM_WORDS;
    const itemBases = bases[k] ?? [];
    words[o] = k;
    words[o + 1] = d.wgStarts[k] ?? 0;
    words[o + 2] = item.blocks;
    words[o + 3] = item.count;
    words[o + 4] = itemBases[0] ?? 0;
    words[o + 5] = itemBases[1] ?? 0;
    words[o + 6] = item.stateBlock - d.stateStart;
    words[o + 7] = item.flags >>> 0;
    for (let s = 0; s < ITEM_SCALARS; s++) f32[o + 8 + s] = item.scalars[s] ?? 0;
  });
}
