// Batching against plain references written here: padding on either side, packing with
// restarting positions and no attention across examples, truncation counts, deterministic
// shuffles and resuming, length grouping, splits, statistics.
import { describe, expect, it } from 'vitest';
import { UnsupportedError } from '@peft-ts/errors';
import {
  BatchIterator,
  IGNORE_INDEX,
  attentionAllowed,
  attentionMatrix,
  collate,
  datasetStats,
  formatStats,
  makeBatches,
  mulberry32,
  packExamples,
  permutation,
  splitDataset,
} from '../index.js';
import type { Batch, TokenizedExample } from '../index.js';

// Example i has ids 100*(i+1) + t and labels: -100 on its first half, the id on the rest.
function example(i: number, length: number, fullLength = length): TokenizedExample {
  const inputIds = Int32Array.from({ length }, (_, t) => 100 * (i + 1) + t);
  const labels = inputIds.map((id, t) => (t < length / 2 ? IGNORE_INDEX : id));
  const trainedTokens = labels.filter((l) => l !== IGNORE_INDEX).length;
  return { inputIds, labels, length, trainedTokens, truncated: fullLength > length, fullLength, boundaryMerges: 0, unaligned: 0 };
}

const PAD = 7;

function row(batch: Batch, r: number, field: 'inputIds' | 'attentionMask' | 'labels' | 'positionIds' | 'sequenceIds'): number[] {
  return [...batch[field].subarray(r * batch.seqLen, (r + 1) * batch.seqLen)];
}

describe('collate', () => {
  const examples = [example(0, 3), example(1, 5)];

  it('pads on the right by default, with the pad id, mask 0, label -100', () => {
    const b = collate(examples, [[0], [1]], { padId: PAD });
    expect([b.batchSize, b.seqLen]).toEqual([2, 5]);
    expect(row(b, 0, 'inputIds')).toEqual([100, 101, 102, PAD, PAD]);
    expect(row(b, 0, 'attentionMask')).toEqual([1, 1, 1, 0, 0]);
    expect(row(b, 0, 'labels')).toEqual([-100, -100, 102, -100, -100]);
    expect(row(b, 0, 'positionIds')).toEqual([0, 1, 2, 0, 0]);
    expect(row(b, 0, 'sequenceIds')).toEqual([1, 1, 1, 0, 0]);
    expect(row(b, 1, 'inputIds')).toEqual([200, 201, 202, 203, 204]);
    expect(row(b, 1, 'labels')).toEqual([-100, -100, -100, 203, 204]);
    expect([b.tokens, b.trainedTokens, b.truncated]).toEqual([8, 3, 0]);
    expect(b.inputIds).toBeInstanceOf(Int32Array);
  });

  it('pads on the left when asked, positions counting from the first real token', () => {
    const b = collate(examples, [[0], [1]], { padId: PAD, padSide: 'left' });
    expect(row(b, 0, 'inputIds')).toEqual([PAD, PAD, 100, 101, 102]);
    expect(row(b, 0, 'attentionMask')).toEqual([0, 0, 1, 1, 1]);
    expect(row(b, 0, 'labels')).toEqual([-100, -100, -100, -100, 102]);
    expect(row(b, 0, 'positionIds')).toEqual([0, 0, 0, 1, 2]);
  });

  it('pads to maxLength or a multiple, and cuts and counts examples over maxLength', () => {
    expect(collate(examples, [[0]], { padId: PAD, maxLength: 6, padTo: 'max-length' }).seqLen).toBe(6);
    expect(collate(examples, [[0], [1]], { padId: PAD, padToMultipleOf: 4 }).seqLen).toBe(8);
    const cut = collate(examples, [[0], [1]], { padId: PAD, maxLength: 4 });
    expect([cut.seqLen, cut.truncated, cut.tokens]).toEqual([4, 1, 7]);
    expect(row(cut, 1, 'inputIds')).toEqual([200, 201, 202, 203]);
    expect(() => collate(examples, [[0]], { padId: PAD, padTo: 'max-length' })).toThrow(UnsupportedError);
  });
});

describe('packing', () => {
  // First-fit written the slow, obvious way.
  function referencePack(lengths: number[], capacity: number, order: number[]): number[][] {
    const rows: Array<{ items: number[]; used: number }> = [];
    for (const i of order) {
      const need = Math.min(lengths[i] ?? 0, capacity);
      const target = rows.find((r) => r.used + need <= capacity);
      if (target) {
        target.items.push(i);
        target.used += need;
      } else rows.push({ items: [i], used: need });
    }
    return rows.map((r) => r.items);
  }

  it('packs first-fit, as the plain reference does', () => {
    expect(packExamples([5, 3, 4, 2, 6].map((length) => ({ length })), { maxLength: 8 })).toEqual([
      { examples: [0, 1], length: 8 },
      { examples: [2, 3], length: 6 },
      { examples: [4], length: 6 },
    ]);
    const random = mulberry32(7);
    const lengths = Array.from({ length: 500 }, () => 1 + Math.floor(random() * 300));
    const order = permutation(500, 3);
    const packed = packExamples(lengths.map((length) => ({ length })), { maxLength: 256, order });
    expect(packed.map((r) => r.examples)).toEqual(referencePack(lengths, 256, order));
    for (const r of packed) expect(r.length).toBeLessThanOrEqual(256);
  });

  it('restarts positions, numbers the examples and keeps attention inside each example', () => {
    const examples = [example(0, 5), example(1, 3), example(2, 4)];
    const b = collate(examples, [[0, 1], [2]], { padId: PAD, maxLength: 8, padTo: 'max-length' });
    expect(row(b, 0, 'inputIds')).toEqual([100, 101, 102, 103, 104, 200, 201, 202]);
    expect(row(b, 0, 'positionIds')).toEqual([0, 1, 2, 3, 4, 0, 1, 2]);
    expect(row(b, 0, 'sequenceIds')).toEqual([1, 1, 1, 1, 1, 2, 2, 2]);
    // The first token of each example has no label: the token before it is another example's.
    expect(row(b, 0, 'labels')).toEqual([-100, -100, -100, 103, 104, -100, -100, 202]);
    expect(row(b, 1, 'sequenceIds')).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    // Reference: causal and block-diagonal over example spans [0,5) and [5,8); padding sees nothing.
    const spans: Array<[number, number]> = [
      [0, 5],
      [5, 8],
    ];
    const expected = new Uint8Array(64);
    for (const [a, z] of spans) for (let q = a; q < z; q += 1) for (let k = a; k <= q; k += 1) expected[q * 8 + k] = 1;
    expect(attentionMatrix(b, 0)).toEqual(expected);
    expect(attentionAllowed(b, 0, 5, 4)).toBe(false);
    expect(attentionAllowed(b, 0, 4, 0)).toBe(true);
    expect(attentionAllowed(b, 1, 5, 0)).toBe(false);
    expect(attentionMatrix(b, 1).reduce((a, v) => a + v, 0)).toBe(10);
  });

  it('packs every example exactly once per epoch, a row never over maxLength', () => {
    const random = mulberry32(11);
    const examples = Array.from({ length: 200 }, (_, i) => example(i, 1 + Math.floor(random() * 40), 0));
    const it = new BatchIterator(examples, { batchSize: 4, padId: PAD, maxLength: 64, pack: true, seed: 5 });
    for (const epoch of [0, 1]) {
      const seen = it.plan(epoch).flat(2).sort((a, b) => a - b);
      expect(seen).toEqual(examples.map((_, i) => i));
      for (const b of it.epoch(epoch)) {
        expect(b.seqLen).toBeLessThanOrEqual(64);
        expect(b.tokens).toBe(b.rows.flat().reduce((n, i) => n + (examples[i]?.length ?? 0), 0));
      }
    }
    expect(it.epochStats(0).padFraction).toBeLessThan(0.2);
  });

  it('needs maxLength to pack, and is not combined with length grouping', () => {
    expect(() => new BatchIterator([example(0, 3)], { batchSize: 1, padId: PAD, pack: true })).toThrow('pack without maxLength');
    expect(() => new BatchIterator([example(0, 3)], { batchSize: 1, padId: PAD, pack: true, maxLength: 8, groupByLength: true })).toThrow(UnsupportedError);
  });
});

describe('order, epochs and resuming', () => {
  const random = mulberry32(99);
  const examples = Array.from({ length: 37 }, (_, i) => example(i, 1 + Math.floor(random() * 20)));

  it('shuffles deterministically by (seed, epoch) and covers every example once', () => {
    const a = new BatchIterator(examples, { batchSize: 4, padId: PAD, seed: 1 });
    const b = new BatchIterator(examples, { batchSize: 4, padId: PAD, seed: 1 });
    const c = new BatchIterator(examples, { batchSize: 4, padId: PAD, seed: 2 });
    expect(a.plan(0)).toEqual(b.plan(0));
    expect(a.plan(3)).toEqual(b.plan(3));
    expect(a.plan(0)).not.toEqual(a.plan(1));
    expect(a.plan(0)).not.toEqual(c.plan(0));
    expect(a.plan(0).flat(2).sort((x, y) => x - y)).toEqual(examples.map((_, i) => i));
    expect(a.numBatches()).toBe(10);
    const plain = new BatchIterator(examples, { batchSize: 4, padId: PAD, shuffle: false });
    expect(plain.plan(2)[0]).toEqual([[0], [1], [2], [3]]);
  });

  it('resumes from (epoch, batch) with exactly the batches a full run would have produced', () => {
    const options = { batchSize: 5, padId: PAD, seed: 42 };
    const full = [...new BatchIterator(examples, options).iterate({ epochs: 3 })];
    expect(full).toHaveLength(3 * 8);
    expect(full.map((b) => [b.epoch, b.index]).slice(6, 10)).toEqual([
      [0, 6],
      [0, 7],
      [1, 0],
      [1, 1],
    ]);
    // A fresh iterator, as after a restart, resuming after batch (1, 2) was consumed.
    const resumed = [...new BatchIterator(examples, options).iterate({ epochs: 3, startEpoch: 1, startBatch: 3 })];
    const tail = full.slice(8 + 3);
    expect(resumed.map((b) => [b.epoch, b.index, b.rows])).toEqual(tail.map((b) => [b.epoch, b.index, b.rows]));
    resumed.forEach((b, i) => {
      expect(b.inputIds).toEqual(tail[i]?.inputIds);
      expect(b.labels).toEqual(tail[i]?.labels);
    });
    expect(makeBatches(examples, { ...options, epoch: 1 }).map((b) => b.rows)).toEqual(full.slice(8, 16).map((b) => b.rows));
  });

  it('drops a short last batch when asked', () => {
    expect(new BatchIterator(examples, { batchSize: 5, padId: PAD, dropLast: true }).numBatches()).toBe(7);
  });

  it('groups by length: batches of similar lengths, every example once, less padding', () => {
    const many = Array.from({ length: 400 }, (_, i) => example(i, 1 + Math.floor(random() * 200)));
    const grouped = new BatchIterator(many, { batchSize: 8, padId: PAD, seed: 3, groupByLength: true, lengthGroupSize: 10 });
    const plain = new BatchIterator(many, { batchSize: 8, padId: PAD, seed: 3 });
    expect(grouped.plan(0).flat(2).sort((a, b) => a - b)).toEqual(many.map((_, i) => i));
    for (const batch of grouped.plan(0)) {
      const lengths = batch.map(([i]) => many[i ?? 0]?.length ?? 0);
      expect(lengths).toEqual([...lengths].sort((a, b) => b - a));
    }
    expect(grouped.epochStats(0).padFraction).toBeLessThan(plain.epochStats(0).padFraction / 2);
    expect(grouped.plan(0)).toEqual(new BatchIterator(many, { batchSize: 8, padId: PAD, seed: 3, groupByLength: true, lengthGroupSize: 10 }).plan(0));
  });
});

describe('splitDataset', () => {
  const items = Array.from({ length: 101 }, (_, i) => `item${i}`);

  it('splits by fraction or count, deterministically by seed, keeping order', () => {
    const a = splitDataset(items, { fraction: 0.1, seed: 7 });
    expect([a.train.length, a.validation.length]).toEqual([91, 10]);
    expect([...a.trainIndices, ...a.validationIndices].sort((x, y) => x - y)).toEqual(items.map((_, i) => i));
    expect(a.validationIndices).toEqual([...a.validationIndices].sort((x, y) => x - y));
    expect(a.validation).toEqual(a.validationIndices.map((i) => items[i]));
    expect(splitDataset(items, { fraction: 0.1, seed: 7 })).toEqual(a);
    expect(splitDataset(items, { fraction: 0.1, seed: 8 }).validationIndices).not.toEqual(a.validationIndices);
    const b = splitDataset(items, { count: 25, seed: 7 });
    expect(b.validation).toHaveLength(25);
    // The first 10 validation picks of a seed are the same whatever the size asked for.
    expect(a.validationIndices.every((i) => b.validationIndices.includes(i))).toBe(true);
    expect(splitDataset(items, { fraction: 0.001 }).validation).toHaveLength(1);
  });

  it('rejects impossible splits', () => {
    expect(() => splitDataset(items, { fraction: 1 })).toThrow(UnsupportedError);
    expect(() => splitDataset(items, { count: 101 })).toThrow(UnsupportedError);
    expect(() => splitDataset(items, { count: 1, fraction: 0.5 })).toThrow('exactly one of fraction or count');
  });
});

describe('datasetStats', () => {
  it('counts lengths, trained tokens and truncation', () => {
    const examples = [example(0, 2), example(1, 4), example(2, 4), example(3, 9, 12), example(4, 10)];
    const stats = datasetStats(examples, { bins: 5 });
    expect(stats).toEqual({
      examples: 5,
      tokensPerEpoch: 29,
      trainedTokens: 1 + 2 + 2 + 4 + 5,
      minLength: 2,
      maxLength: 10,
      meanLength: 5.8,
      medianLength: 4,
      p95Length: 10,
      truncated: 1,
      truncatedPercent: 20,
      noTrainedTokens: 0,
      histogram: { edges: [2, 4, 6, 8, 10, 12], counts: [1, 2, 0, 1, 1] },
    });
    const text = formatStats(stats);
    expect(text.split('\n')[0]).toBe('examples: 5, tokens/epoch: 29, trained tokens: 14');
    expect(text).toContain('truncated: 1 (20.0%)');
  });
});

describe('prng', () => {
  it('is deterministic and close to uniform', () => {
    const a = mulberry32(123);
    const b = mulberry32(123);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const counts = new Array<number>(10).fill(0);
    for (let s = 0; s < 10000; s += 1) {
      const first = permutation(10, s)[0] ?? 0;
      counts[first] = (counts[first] ?? 0) + 1;
    }
    // 1000 expected per bin; the standard deviation is 30, so 150 is five of them.
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });
});
