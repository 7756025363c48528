// Deterministic train/validation splits: which items go to validation depends only on the
// seed and the number of items, and both parts keep the original order.
import { UnsupportedError } from '@peft-ts/errors';
import { permutation } from './prng.js';

export interface SplitOptions {
  /** Share of items for validation, in [0, 1); rounded, and at least 1 when above 0. */
  fraction?: number;
  /** Number of items for validation. */
  count?: number;
  seed?: number;
}

export interface Split<T> {
  train: T[];
  validation: T[];
  /** Indices into the input, ascending. */
  trainIndices: number[];
  validationIndices: number[];
}

// A stream id that keeps split draws apart from the epoch shuffles that use the same seed.
const SPLIT_STREAM = 0x5971;

/** Splits items into train and validation parts; give either `fraction` or `count`. */
export function splitDataset<T>(items: readonly T[], options: SplitOptions): Split<T> {
  const n = items.length;
  let count: number;
  if (options.count !== undefined && options.fraction === undefined) {
    count = options.count;
    if (!Number.isInteger(count) || count < 0 || count >= n) {
      throw new UnsupportedError({ what: 'validation count', got: count, where: `splitDataset: expected an integer in [0, ${n})` });
    }
  } else if (options.fraction !== undefined && options.count === undefined) {
    const f = options.fraction;
    if (!(f >= 0 && f < 1)) throw new UnsupportedError({ what: 'validation fraction', got: f, where: 'splitDataset: expected a number in [0, 1)' });
    count = Math.min(n - 1, Math.max(f > 0 ? 1 : 0, Math.round(f * n)));
  } else {
    throw new UnsupportedError({ what: 'split options', got: options, where: 'splitDataset: give exactly one of fraction or count' });
  }
  const order = permutation(n, options.seed ?? 0, SPLIT_STREAM);
  const inValidation = new Uint8Array(n);
  for (let i = 0; i < count; i += 1) inValidation[order[i] ?? 0] = 1;
  const split: Split<T> = { train: [], validation: [], trainIndices: [], validationIndices: [] };
  items.forEach((item, i) => {
    if (inValidation[i]) {
      split.validation.push(item);
      split.validationIndices.push(i);
    } else {
      split.train.push(item);
      split.trainIndices.push(i);
    }
  });
  return split;
}
