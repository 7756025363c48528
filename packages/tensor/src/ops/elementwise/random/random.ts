// Random tensors from the runtime's counter-based Philox stream: the same seed and the same
// sequence of draws give the same numbers on every device. Also the inverted dropout op.
import { UnsupportedError } from '@peft-ts/errors';
import { clone, needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { assertDType, DTYPE_BYTES, FLOAT_DTYPES } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import type { Runtime } from '../../../core/runtime.js';
import { checkShape, noGrad, numelOf, type Shape, type Tensor } from '../../../core/tensor.js';
import { planRowChunks, rowsBinding } from '../chunks.js';
import { scale as scaleOp } from '../unary/unary.js';
import { dropoutSpec, randomSpec, type RandomKind } from './random.kernel.js';

export interface RandomOptions {
  /**
   * Draw from this seed's stream starting at counter 0 instead of the runtime's stream (which
   * then does not advance): the same seed always gives the same tensor.
   */
  seed?: number;
}

/** Where a draw of `count` values sits in the Philox stream: first block (64-bit) and key. */
export interface RngSlot {
  blockLo: number;
  blockHi: number;
  k0: number;
  k1: number;
}

function slotOf(firstBlock: number, seed: number): RngSlot {
  return {
    blockLo: firstBlock % 2 ** 32,
    blockHi: Math.floor(firstBlock / 2 ** 32),
    k0: seed % 2 ** 32 >>> 0,
    k1: Math.floor(seed / 2 ** 32) >>> 0,
  };
}

/** Reserves `count` values of the runtime's stream (4 per Philox block), or of `seed`'s own stream. */
export function takeRngSlot(rt: Runtime, op: string, count: number, seed?: number): RngSlot {
  if (seed !== undefined) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new UnsupportedError({ what: 'seed', got: seed, supported: ['a non-negative safe integer'], where: op });
    return slotOf(0, seed);
  }
  // takeRng hands out multiples of 4 unless rngOffset was set by hand; rounding up the block
  // still never overlaps the next draw, which starts ceil(count / 4) * 4 counters later.
  return slotOf(Math.ceil(rt.takeRng(count) / 4), rt.rngSeed);
}

/** Uniforms of a piece of a draw that starts `start` values (a multiple of 4) into the slot. */
function pieceUniforms(slot: RngSlot, start: number, count: number): number[] {
  const block = slot.blockHi * 2 ** 32 + slot.blockLo + start / 4;
  return [count, block % 2 ** 32, Math.floor(block / 2 ** 32), slot.k0, slot.k1];
}

function draw(rt: Runtime, op: string, kind: RandomKind, shape: Shape, options: RandomOptions): Tensor {
  checkShape(op, shape);
  const n = numelOf(shape);
  const out = empty(rt, shape, kind === 'bits' ? 'u32' : 'f32');
  if (n === 0) return out;
  const slot = takeRngSlot(rt, op, n, options.seed);
  // Pieces start at multiples of 64 elements, so every piece starts on a block boundary.
  for (const c of planRowChunks(rt, op, n, [4])) {
    rt.dispatch(randomSpec(kind), [rowsBinding(out, c, 4)], pieceUniforms(slot, c.start, c.count), grid1d(Math.ceil(c.count / 4), 64));
  }
  return out;
}

/** Uniform floats in [0, 1): the top 24 bits of each Philox word times 2^-24. */
export function rand(rt: Runtime, shape: Shape, options: RandomOptions = {}): Tensor {
  return draw(rt, 'rand', 'uniform', shape, options);
}

/** Standard normal floats (Box-Muller on pairs of Philox words). */
export function randn(rt: Runtime, shape: Shape, options: RandomOptions = {}): Tensor {
  return draw(rt, 'randn', 'normal', shape, options);
}

/** The raw Philox-4x32-10 words (u32), as the other draws consume them. */
export function randBits(rt: Runtime, shape: Shape, options: RandomOptions = {}): Tensor {
  return draw(rt, 'randBits', 'bits', shape, options);
}

export interface DropoutOptions {
  /** Off (identity) when false. Default true. */
  training?: boolean;
}

function runDropout(x: Tensor, slot: RngSlot, thr: number, factor: number): Tensor {
  const rt = x.rt;
  const out = empty(rt, x.shape, 'f32');
  const n = x.numel;
  if (n === 0) return out;
  const xb = DTYPE_BYTES[x.dtype];
  for (const c of planRowChunks(rt, 'dropout', n, [xb, 4])) {
    rt.dispatch(dropoutSpec(x.dtype), [rowsBinding(x, c, xb), rowsBinding(out, c, 4)], [...pieceUniforms(slot, c.start, c.count), thr, factor], grid1d(Math.ceil(c.count / 4), 64));
  }
  return out;
}

/**
 * Inverted dropout: each element is zeroed with probability p (exactly round(p * 2^24) / 2^24)
 * and the rest scaled by 1 / (1 - p). The mask comes from the runtime's Philox stream; backward
 * regenerates it from the same counters instead of storing it, and checkpoint() recomputation
 * reuses them. p = 0 or training = false is the identity (for f32 input the result shares x's
 * storage; 16-bit input is widened to f32).
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  assertDType('dropout', x.dtype, FLOAT_DTYPES);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new UnsupportedError({ what: 'dropout probability', got: p, supported: ['a number in [0, 1]'], where: 'dropout' });
  }
  if (options.training === false || p === 0) {
    if (x.dtype !== 'f32') return scaleOp(x, 1);
    const view = x.share();
    view.kept = false;
    return record(view, 'dropout', [x], [], (g) => noGrad(() => [clone(g)]));
  }
  const slot = takeRngSlot(x.rt, 'dropout', x.numel);
  const thr = Math.round(p * 2 ** 24);
  const factor = p === 1 ? 0 : 1 / (1 - p);
  const out = runDropout(x, slot, thr, factor);
  if (!needsGrad(x)) return out;
  return record(out, 'dropout', [x], [], (g) => noGrad(() => [runDropout(g, slot, thr, factor)]));
}
