// Packing: several examples share one row of at most maxLength tokens. First-fit over a
// max-segment-tree of free space, so packing n examples takes O(n log n).
import { UnsupportedError } from '@peft-ts/errors';

/** One packed row: which examples it holds (in order) and how many tokens they fill. */
export interface PackedRow {
  examples: number[];
  length: number;
}

export interface PackOptions {
  /** Row capacity in tokens; longer examples are cut to it and get a row of their own. */
  maxLength: number;
  /** The order examples are placed in (default 0..n-1); first-fit keeps rows close to it. */
  order?: readonly number[];
}

/**
 * Packs examples into rows with first-fit: each example goes into the first row (in creation
 * order) with room for it, or opens a new row. Examples keep their relative order in a row.
 */
export function packExamples(examples: readonly { length: number }[], options: PackOptions): PackedRow[] {
  const capacity = options.maxLength;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new UnsupportedError({ what: 'maxLength', got: capacity, where: 'packExamples: expected a positive integer' });
  }
  const order = options.order ?? examples.map((_, i) => i);
  let size = 1;
  while (size < Math.max(1, order.length)) size *= 2;
  // Every leaf starts at full capacity: the leftmost leaf with room is then either an open
  // row or the next unopened one, which is exactly first-fit.
  const tree = new Int32Array(2 * size).fill(capacity);
  const rows: PackedRow[] = [];
  for (const index of order) {
    const example = examples[index];
    if (example === undefined) throw new UnsupportedError({ what: 'example index', got: index, where: 'packExamples order' });
    const need = Math.min(example.length, capacity);
    let node = 1;
    while (node < size) node = (tree[2 * node] ?? 0) >= need ? 2 * node : 2 * node + 1;
    const leaf = node - size;
    const row = rows[leaf] ?? { examples: [], length: 0 };
    rows[leaf] = row;
    row.examples.push(index);
    row.length += need;
    tree[node] = capacity - row.length;
    for (node >>= 1; node >= 1; node >>= 1) tree[node] = Math.max(tree[2 * node] ?? 0, tree[2 * node + 1] ?? 0);
  }
  return rows;
}
