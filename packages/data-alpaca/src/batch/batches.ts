// Batches for training: per-epoch order from (seed, epoch), optional length grouping or
// packing, padding and collation into row-major typed arrays. Each batch knows its
// (epoch, index), and any batch can be rebuilt from those alone, which is what resuming needs.
import { UnsupportedError } from '@peft-ts/errors';
import { IGNORE_INDEX } from '../tokenize/tokenize-example.js';
import { packExamples } from './pack.js';
import { permutation, seededRandom, shuffleInPlace } from './prng.js';

/** What collation needs from an example (a TokenizedExample fits). */
export interface BatchableExample {
  inputIds: Int32Array;
  labels: Int32Array;
  length: number;
}

/**
 * A batch, every array row-major [batchSize, seqLen]. `sequenceIds` numbers the examples in a
 * row from 1 (0 on padding): a token may attend to an earlier token only when both have the
 * same non-zero sequence id, which keeps packed examples from seeing each other (see
 * `attentionAllowed`). `positionIds` restart at 0 for every example.
 */
export interface Batch {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  sequenceIds: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Where this batch sits: resume with `{ startEpoch: epoch, startBatch: index + 1 }`. */
  epoch: number;
  index: number;
  /** Example indices per row. */
  rows: number[][];
  /** Non-padding tokens. */
  tokens: number;
  /** Tokens with a label other than -100. */
  trainedTokens: number;
  /** Examples cut to maxLength in this batch. */
  truncated: number;
}

export interface CollateOptions {
  padId: number;
  /** Cap on tokens per row: longer examples are cut (and counted). Required for packing and padTo 'max-length'. */
  maxLength?: number;
  /** 'longest' (default): pad to the longest row of the batch; 'max-length': always to maxLength. */
  padTo?: 'longest' | 'max-length';
  /** Round seqLen up to a multiple of this (e.g. 8 or 64, for kernel tiles). */
  padToMultipleOf?: number;
  /** Where padding goes (default 'right'). */
  padSide?: 'right' | 'left';
}

export interface BatchOptions extends CollateOptions {
  batchSize: number;
  /** Shuffle each epoch (default true); the order depends only on (seed, epoch). */
  shuffle?: boolean;
  seed?: number;
  /** Pack several examples into each row of maxLength tokens. */
  pack?: boolean;
  /** Batch examples of similar length together to save padding (not with pack). */
  groupByLength?: boolean;
  /** With groupByLength: examples sorted together = batchSize * this (default 50). */
  lengthGroupSize?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Where to start or resume: the epoch and the batch index within it. */
export interface DataPosition {
  epoch: number;
  batch: number;
}

const EPOCH_STREAM = 0xe90c;
const GROUP_STREAM = 0x6e0b;

function positiveInteger(value: number | undefined, what: string, where: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
    throw new UnsupportedError({ what, got: value, where: `${where}: expected a positive integer` });
  }
}

function checkCollate(options: CollateOptions, where: string): void {
  positiveInteger(options.maxLength, 'maxLength', where);
  positiveInteger(options.padToMultipleOf, 'padToMultipleOf', where);
  if (!Number.isInteger(options.padId)) throw new UnsupportedError({ what: 'padId', got: options.padId, where });
  if (options.padSide !== undefined && options.padSide !== 'right' && options.padSide !== 'left') {
    throw new UnsupportedError({ what: 'padSide', got: options.padSide, supported: ['right', 'left'], where });
  }
  if (options.padTo !== undefined && options.padTo !== 'longest' && options.padTo !== 'max-length') {
    throw new UnsupportedError({ what: 'padTo', got: options.padTo, supported: ['longest', 'max-length'], where });
  }
  if (options.padTo === 'max-length' && options.maxLength === undefined) {
    throw new UnsupportedError({ what: "padTo 'max-length' without maxLength", got: options.padTo, where });
  }
}

function rowSeqLen(rowLengths: readonly number[], options: CollateOptions): number {
  let seqLen = options.padTo === 'max-length' && options.maxLength !== undefined ? options.maxLength : Math.max(1, ...rowLengths);
  const multiple = options.padToMultipleOf;
  if (multiple !== undefined) seqLen = Math.ceil(seqLen / multiple) * multiple;
  return seqLen;
}

/**
 * Collates rows of examples into a Batch. Each row holds one or more examples back to back;
 * each example is cut to maxLength, its positions restart at 0, and the label of its first
 * token is -100 (nothing inside the example precedes it, and in a packed row the token before
 * it belongs to another example).
 */
export function collate(
  examples: readonly BatchableExample[],
  rows: readonly (readonly number[])[],
  options: CollateOptions,
  position: DataPosition = { epoch: 0, batch: 0 },
): Batch {
  checkCollate(options, 'collate');
  const cap = options.maxLength ?? Number.POSITIVE_INFINITY;
  const get = (index: number): BatchableExample => {
    const example = examples[index];
    if (example === undefined) throw new UnsupportedError({ what: 'example index', got: index, where: `collate: ${examples.length} examples` });
    return example;
  };
  const rowLengths = rows.map((row) => row.reduce((n, i) => n + Math.min(get(i).length, cap), 0));
  if (options.maxLength !== undefined && rowLengths.some((n) => n > cap)) {
    throw new UnsupportedError({ what: 'row longer than maxLength', got: Math.max(...rowLengths), where: 'collate: a packed row must fit maxLength' });
  }
  const seqLen = rowSeqLen(rowLengths, options);
  const size = rows.length * seqLen;
  const batch: Batch = {
    inputIds: new Int32Array(size).fill(options.padId),
    attentionMask: new Int32Array(size),
    labels: new Int32Array(size).fill(IGNORE_INDEX),
    positionIds: new Int32Array(size),
    sequenceIds: new Int32Array(size),
    batchSize: rows.length,
    seqLen,
    epoch: position.epoch,
    index: position.batch,
    rows: rows.map((row) => [...row]),
    tokens: 0,
    trainedTokens: 0,
    truncated: 0,
  };
  rows.forEach((row, r) => {
    let at = r * seqLen + (options.padSide === 'left' ? seqLen - (rowLengths[r] ?? 0) : 0);
    row.forEach((index, j) => {
      const example = get(index);
      const length = Math.min(example.length, cap);
      if (length < example.length) batch.truncated += 1;
      batch.inputIds.set(example.inputIds.subarray(0, length), at);
      batch.labels.set(example.labels.subarray(0, length), at);
      batch.labels[at] = IGNORE_INDEX;
      for (let t = 0; t < length; t += 1) {
        batch.attentionMask[at + t] = 1;
        batch.positionIds[at + t] = t;
        batch.sequenceIds[at + t] = j + 1;
        if (batch.labels[at + t] !== IGNORE_INDEX) batch.trainedTokens += 1;
      }
      batch.tokens += length;
      at += length;
    });
  });
  return batch;
}

/**
 * Whether query token `q` may attend to key token `k` in a row: causal, within the same
 * example, never to padding. The rule a trainer's attention mask must follow.
 */
export function attentionAllowed(batch: Batch, row: number, q: number, k: number): boolean {
  const base = row * batch.seqLen;
  const sq = batch.sequenceIds[base + q] ?? 0;
  return k <= q && sq !== 0 && sq === (batch.sequenceIds[base + k] ?? -1);
}

/** The dense [seqLen, seqLen] mask of one row (1 = may attend), query-major, from attentionAllowed. */
export function attentionMatrix(batch: Batch, row: number): Uint8Array {
  const n = batch.seqLen;
  const out = new Uint8Array(n * n);
  for (let q = 0; q < n; q += 1) for (let k = 0; k <= q; k += 1) out[q * n + k] = attentionAllowed(batch, row, q, k) ? 1 : 0;
  return out;
}

/** Per-epoch numbers computed from the plan alone. */
export interface EpochStats {
  batches: number;
  rows: number;
  examples: number;
  /** Non-padding tokens. */
  tokens: number;
  /** Tokens including padding (sum of batchSize * seqLen). */
  paddedTokens: number;
  /** Share of paddedTokens that is padding. */
  padFraction: number;
}

/** Iterates batches over epochs, deterministically from (seed, epoch), resumable at any batch. */
export class BatchIterator {
  readonly #examples: readonly BatchableExample[];
  readonly #options: BatchOptions;
  #cached: { epoch: number; plan: number[][][] } | null = null;

  constructor(examples: readonly BatchableExample[], options: BatchOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new UnsupportedError({ what: 'batchSize', got: options.batchSize, where: 'BatchIterator: expected a positive integer' });
    }
    positiveInteger(options.lengthGroupSize, 'lengthGroupSize', 'BatchIterator');
    checkCollate(options, 'BatchIterator');
    if (options.pack && options.maxLength === undefined) {
      throw new UnsupportedError({ what: 'pack without maxLength', got: true, where: 'BatchIterator: packing needs a row capacity' });
    }
    if (options.pack && options.groupByLength) {
      throw new UnsupportedError({ what: 'pack together with groupByLength', got: true, where: 'BatchIterator: choose one' });
    }
    if (examples.length === 0) throw new UnsupportedError({ what: 'empty dataset', got: 0, where: 'BatchIterator' });
    this.#examples = examples;
    this.#options = options;
  }

  /**
   * The epoch's batches as example indices: plan(epoch)[batch][row] lists the examples of
   * that row. A pure function of (examples' lengths, options, epoch).
   */
  plan(epoch: number): number[][][] {
    if (!Number.isInteger(epoch) || epoch < 0) throw new UnsupportedError({ what: 'epoch', got: epoch, where: 'BatchIterator.plan' });
    if (this.#cached?.epoch === epoch) return this.#cached.plan;
    const o = this.#options;
    const n = this.#examples.length;
    const seed = o.seed ?? 0;
    const order = o.shuffle === false ? Array.from({ length: n }, (_, i) => i) : permutation(n, seed, EPOCH_STREAM, epoch);
    const length = (i: number) => this.#examples[i]?.length ?? 0;
    let batches: number[][][] = [];
    if (o.pack) {
      const rows = packExamples(this.#examples, { maxLength: o.maxLength ?? 1, order }).map((r) => r.examples);
      for (let b = 0; b < rows.length; b += o.batchSize) batches.push(rows.slice(b, b + o.batchSize));
    } else if (o.groupByLength) {
      // Sort within groups of batchSize * lengthGroupSize, so batches hold similar lengths
      // but the data still mixes; then shuffle which batch comes when.
      const group = o.batchSize * (o.lengthGroupSize ?? 50);
      for (let g = 0; g < n; g += group) {
        const members = order.slice(g, g + group).sort((a, b) => length(b) - length(a));
        for (let b = 0; b < members.length; b += o.batchSize) batches.push(members.slice(b, b + o.batchSize).map((i) => [i]));
      }
      const lastShort = batches.length > 0 && (batches[batches.length - 1]?.length ?? 0) < o.batchSize;
      if (o.shuffle !== false) {
        // A short batch stays last so dropLast still drops just it.
        const tail = lastShort ? batches.pop() : undefined;
        shuffleInPlace(batches, seededRandom(seed, GROUP_STREAM, epoch));
        if (tail) batches.push(tail);
      }
    } else {
      for (let b = 0; b < n; b += o.batchSize) batches.push(order.slice(b, b + o.batchSize).map((i) => [i]));
    }
    if (o.dropLast && batches.length > 0 && (batches[batches.length - 1]?.length ?? 0) < o.batchSize) batches = batches.slice(0, -1);
    this.#cached = { epoch, plan: batches };
    return batches;
  }

  /** Batches in the epoch (constant across epochs unless packing). */
  numBatches(epoch = 0): number {
    return this.plan(epoch).length;
  }

  /** The batch at (epoch, index), built from the plan. */
  batchAt(epoch: number, index: number): Batch {
    const rows = this.plan(epoch)[index];
    if (rows === undefined) throw new UnsupportedError({ what: 'batch index', got: index, where: `BatchIterator.batchAt: epoch ${epoch} has ${this.numBatches(epoch)} batches` });
    return collate(this.#examples, rows, this.#options, { epoch, batch: index });
  }

  /** The batches of one epoch from `startBatch` on. */
  *epoch(epoch: number, startBatch = 0): Generator<Batch> {
    const count = this.plan(epoch).length;
    for (let b = startBatch; b < count; b += 1) yield this.batchAt(epoch, b);
  }

  /**
   * Batches over `epochs` epochs in total, starting at (startEpoch, startBatch): to resume
   * after batch (e, i) was consumed, pass startEpoch e and startBatch i + 1 (a startBatch past
   * the epoch's end moves on to the next epoch).
   */
  *iterate(options: { epochs: number; startEpoch?: number; startBatch?: number }): Generator<Batch> {
    const first = options.startEpoch ?? 0;
    for (let e = first; e < options.epochs; e += 1) yield* this.epoch(e, e === first ? (options.startBatch ?? 0) : 0);
  }

  /** Batch, token and padding counts for an epoch. */
  epochStats(epoch = 0): EpochStats {
    const cap = this.#options.maxLength ?? Number.POSITIVE_INFINITY;
    const stats: EpochStats = { batches: 0, rows: 0, examples: 0, tokens: 0, paddedTokens: 0, padFraction: 0 };
    for (const rows of this.plan(epoch)) {
      const rowLengths = rows.map((row) => row.reduce((n, i) => n + Math.min(this.#examples[i]?.length ?? 0, cap), 0));
      stats.batches += 1;
      stats.rows += rows.length;
      stats.examples += rows.reduce((n, row) => n + row.length, 0);
      stats.tokens += rowLengths.reduce((a, b) => a + b, 0);
      stats.paddedTokens += rows.length * rowSeqLen(rowLengths, this.#options);
    }
    stats.padFraction = stats.paddedTokens === 0 ? 0 : 1 - stats.tokens / stats.paddedTokens;
    return stats;
  }
}

/** The batches of one epoch (default 0) from `startBatch` on; see BatchIterator. */
export function* batches(
  examples: readonly BatchableExample[],
  options: BatchOptions & { epoch?: number; startBatch?: number },
): Generator<Batch> {
  yield* new BatchIterator(examples, options).epoch(options.epoch ?? 0, options.startBatch ?? 0);
}

/** All batches of one epoch as an array. */
export function makeBatches(examples: readonly BatchableExample[], options: BatchOptions & { epoch?: number }): Batch[] {
  return [...batches(examples, options)];
}
