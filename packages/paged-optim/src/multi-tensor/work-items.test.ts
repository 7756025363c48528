// Packing of work items into multi-tensor dispatches: slot limits, state spans, buffers never
// bound twice in one dispatch, ranges split for the binding limit, aligned binding windows.
import { beforeAll, describe, expect, it } from 'vitest';
import { empty, type Runtime, type Tensor } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { ITEM_WORDS, encodeItems, operandWindow, packItems, splitRange, type WorkItem } from './work-items.js';

describe('multi-tensor work items', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  const item = (t: Tensor, stateBlock: number, blocks: number): WorkItem => ({ operands: [t], start: 0, count: blocks * 256, blocks, stateBlock, flags: 0, scalars: [] });

  it('splits a range into block-aligned pieces that fit a binding', () => {
    expect(splitRange(0, 1000, 300, 256)).toEqual([
      [0, 256],
      [256, 256],
      [512, 256],
      [768, 232],
    ]);
    expect(splitRange(512, 100, 1 << 20, 256)).toEqual([[512, 100]]);
    expect(splitRange(0, 0, 1024, 256)).toEqual([]);
  });

  it('packs at most maxItems per dispatch, bounds the state span, and keeps one buffer per dispatch', () => {
    const ts = Array.from({ length: 5 }, () => empty(rt, [256 * 3], 'f32'));
    const [a, b, c, d, e] = ts;
    if (!a || !b || !c || !d || !e) throw new Error('tensors');
    const items = [item(a, 0, 3), item(b, 3, 3), item(c, 6, 3), item(d, 9, 3), item(e, 12, 3)];
    const byCount = packItems(items, { maxItems: 2, maxStateBlocks: 1e9, maxWorkgroups: 1e9 });
    expect(byCount.map((x) => x.items.length)).toEqual([2, 2, 1]);
    expect(byCount[1]).toMatchObject({ wgStarts: [0, 3], totalWorkgroups: 6, stateStart: 6, stateEnd: 12 });
    const bySpan = packItems(items, { maxItems: 8, maxStateBlocks: 7, maxWorkgroups: 1e9 });
    expect(bySpan.map((x) => x.items.length)).toEqual([2, 2, 1]);
    // The same tensor twice (a split range) goes to separate dispatches.
    const split = packItems([item(a, 0, 1), item(a, 1, 1), item(b, 2, 1)], { maxItems: 8, maxStateBlocks: 1e9, maxWorkgroups: 1e9 });
    expect(split.map((x) => x.items.length)).toEqual([1, 2]);
    for (const t of ts) t.dispose();
  });

  it('aligns binding windows down and records the element offset inside them', () => {
    const t = empty(rt, [1000], 'f32');
    const w = operandWindow(t, 300, 100, 256);
    // Element 300 is byte 1200: the window starts at byte 1024, element 44 of it.
    expect(w.binding.offset).toBe(1024);
    expect(w.base).toBe(44);
    expect(w.binding.size).toBe((44 + 100) * 4);
    const d = packItems([{ ...item(t, 5, 1), start: 300, count: 100 }], { maxItems: 4, maxStateBlocks: 10, maxWorkgroups: 10 });
    const words = new Uint32Array(2 * ITEM_WORDS);
    const packed = d[0];
    if (!packed) throw new Error('no dispatch');
    encodeItems(packed, [[w.base, 7]], words, 1);
    expect(Array.from(words.subarray(ITEM_WORDS, ITEM_WORDS + 8))).toEqual([0, 0, 1, 100, 44, 7, 0, 0]);
    t.dispose();
  });
});
