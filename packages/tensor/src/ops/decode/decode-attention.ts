// Attention of new queries against a growing key/value cache, for generation (no autograd).
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { empty, zeros } from '../../core/create.js';
import type { Runtime } from '../../core/runtime.js';
import type { Tensor } from '../../core/tensor.js';
import { decodeAttentionSpec } from './decode-attention.kernel.js';

/** Key and value caches of one layer: [B, maxT, Hkv, D] each, f32, filled up to `length`. */
export class KvCache {
  length = 0;
  readonly k: Tensor;
  readonly v: Tensor;

  constructor(
    rt: Runtime,
    readonly batch: number,
    readonly maxLength: number,
    readonly kvHeads: number,
    readonly headDim: number,
  ) {
    this.k = zeros(rt, [batch, maxLength, kvHeads, headDim], 'f32', { tag: 'activations' }).keep();
    this.v = zeros(rt, [batch, maxLength, kvHeads, headDim], 'f32', { tag: 'activations' }).keep();
  }

  /** Appends k, v [B, T, Hkv, D] at the current length. */
  append(k: Tensor, v: Tensor): void {
    const [b, t, h, d] = k.shape;
    if (k.shape.length !== 4 || b !== this.batch || h !== this.kvHeads || d !== this.headDim || !v.shape.every((x, i) => x === k.shape[i])) {
      throw new ShapeMismatchError({ op: 'KvCache.append', expected: [this.batch, 'T', this.kvHeads, this.headDim], got: [k.shape, v.shape] });
    }
    if (k.dtype !== 'f32' || v.dtype !== 'f32') throw new DTypeError({ op: 'KvCache.append', expected: 'f32', got: `${k.dtype}, ${v.dtype}` });
    const steps = t ?? 0;
    if (this.length + steps > this.maxLength) {
      throw new ShapeMismatchError({ op: 'KvCache.append', expected: `at most ${this.maxLength} cached positions`, got: this.length + steps });
    }
    const row = this.kvHeads * this.headDim * 4;
    for (const [src, dst] of [
      [k, this.k],
      [v, this.v],
    ] as const) {
      const s = src.binding();
      const dBind = dst.binding();
      for (let bi = 0; bi < this.batch; bi++) {
        src.rt.copy(
          { buffer: s.buffer, offset: s.offset + bi * steps * row, size: steps * row },
          { buffer: dBind.buffer, offset: dBind.offset + (bi * this.maxLength + this.length) * row, size: steps * row },
          steps * row,
        );
      }
    }
    this.length += steps;
  }

  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }
}

export interface DecodeAttentionOptions {
  /** i32 [B, maxT]: 1 for real tokens, 0 for padding, over cache positions. */
  attentionMask?: Tensor;
  /** Mistral sliding window: key j is visible to query position p iff p - window < j <= p. */
  slidingWindow?: number;
  scale?: number;
}

/**
 * q [B, Tq, Hq, D] holds the queries of the newest Tq positions (already appended to `cache`);
 * query i sits at position cache.length - Tq + i and attends causally to the cache.
 */
export function decodeAttention(q: Tensor, cache: KvCache, options: DecodeAttentionOptions = {}): Tensor {
  const [b, tq, hq, d] = q.shape;
  if (q.shape.length !== 4 || b !== cache.batch || d !== cache.headDim || hq === undefined || hq % cache.kvHeads !== 0 || tq === undefined || tq > cache.length) {
    throw new ShapeMismatchError({ op: 'decodeAttention', expected: [cache.batch, `T <= ${cache.length}`, `a multiple of ${cache.kvHeads}`, cache.headDim], got: q.shape });
  }
  if (q.dtype !== 'f32') throw new DTypeError({ op: 'decodeAttention', expected: 'f32', got: q.dtype });
  const mask = options.attentionMask;
  if (mask && (mask.dtype !== 'i32' || mask.shape[0] !== b || mask.shape[1] !== cache.maxLength)) {
    throw new ShapeMismatchError({ op: 'decodeAttention', expected: `i32 mask [${b}, ${cache.maxLength}]`, got: mask.shape });
  }
  const out = empty(q.rt, q.shape, 'f32');
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const maskBinding = mask ? mask.binding() : q.binding();
  q.rt.dispatch(
    decodeAttentionSpec(d),
    [q.binding(), cache.k.binding(), cache.v.binding(), maskBinding, out.binding()],
    [tq, hq, cache.kvHeads, cache.maxLength, cache.length, options.slidingWindow ?? 0, scale, mask ? 1 : 0],
    [tq, hq, b],
  );
  return out;
}
