// embedding: token id lookup into a [vocab, dim] table (f32/f16/bf16, split across bindings
// when larger than one), with a deterministic scatter-add gradient for the table.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { record } from '../../../core/autograd.js';
import { empty, zeros } from '../../../core/create.js';
import { isFloat } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { checkBindable } from '../common/bindable.js';
import { rowChunks } from '../common/row-chunks.js';
import {
  embeddingGatherSpec,
  embeddingHistogramSpec,
  embeddingRankSpec,
  embeddingReduceSpec,
  embeddingScanSpec,
  embeddingScatterSpec,
} from './embedding.kernel.js';

export interface EmbeddingOptions {
  /** Tokens with this id contribute no gradient (torch's padding_idx); the lookup is unchanged. */
  paddingIdx?: number;
  /**
   * Largest binding to use for the table and its gradient; defaults to the device's
   * maxStorageBufferBindingSize. Lower it to exercise the split path on small tables.
   */
  maxBindingBytes?: number;
}

const NAN_BITS = 0x7fc00000;

/** Deterministic dW [vocab, dim] from the output gradient g [tokens, dim]. */
function embeddingGrad(g: Tensor, ids: Tensor, vocab: number, dim: number, pad: number, maxBytes: number): Tensor {
  const rt = g.rt;
  const tokens = ids.numel;
  const dw = zeros(rt, [vocab, dim], 'f32', { tag: 'grads' });
  if (tokens === 0) return dw;
  const counts = zeros(rt, [vocab], 'u32');
  const cursor = zeros(rt, [vocab], 'u32');
  const offsets = empty(rt, [vocab + 1], 'u32');
  const slots = empty(rt, [tokens], 'u32');
  const sorted = empty(rt, [tokens], 'u32');
  rt.dispatch(embeddingHistogramSpec(), [ids.binding(), counts.binding()], [tokens, vocab, pad], grid1d(tokens, 256));
  rt.dispatch(embeddingScanSpec(), [counts.binding(), offsets.binding()], [vocab], [1, 1, 1]);
  rt.dispatch(embeddingScatterSpec(), [ids.binding(), offsets.binding(), cursor.binding(), slots.binding()], [tokens, vocab, pad], grid1d(tokens, 256));
  rt.dispatch(embeddingRankSpec(), [ids.binding(), offsets.binding(), counts.binding(), slots.binding(), sorted.binding()], [tokens, vocab], grid1d(tokens, 256));
  const n = tokens * dim;
  for (const chunk of rowChunks('embedding backward', dw, maxBytes)) {
    const bindings = [ids.binding(), offsets.binding(), counts.binding(), sorted.binding(), g.binding(), chunk.binding];
    rt.dispatch(embeddingReduceSpec(), bindings, [n, dim, vocab, chunk.row0, chunk.rows], grid1d(n, 256));
  }
  for (const t of [counts, cursor, offsets, slots, sorted]) t.dispose();
  return dw;
}

/**
 * Looks up rows of `weight` [vocab, dim] for i32 `ids` of any shape; the result is f32
 * [...ids.shape, dim]. Ids outside [0, vocab) give NaN rows (ops never read back, so they cannot
 * throw). The gradient for weight (only when it requires grad) is a dense f32 [vocab, dim] built
 * without float atomics, so it is bit-identical run to run: a u32 histogram of ids, a prefix sum,
 * a scatter of token indices into per-id segments, a stable rank within each segment, and one
 * invocation per (id, column) summing its tokens in order. Cost: O(tokens) atomics, a single
 * workgroup pass over the vocabulary (vocab / 256 steps per lane), O(sum over ids of
 * count^2) comparisons for the ranks, and O(tokens * dim) reads for the sums, plus clearing
 * dW. A table larger than one storage binding is read (and its gradient written) in row chunks,
 * one dispatch per chunk.
 */
export function embedding(ids: Tensor, weight: Tensor, options: EmbeddingOptions = {}): Tensor {
  if (ids.dtype !== 'i32') throw new DTypeError({ op: 'embedding', expected: 'ids of i32', got: ids.dtype });
  if (!isFloat(weight.dtype)) throw new DTypeError({ op: 'embedding', expected: 'weight of f32 | f16 | bf16', got: weight.dtype });
  if (weight.ndim !== 2) throw new ShapeMismatchError({ op: 'embedding', expected: `weight [vocab, dim] for ids [${ids.shape.join(', ')}]`, got: weight.shape });
  const [vocab = 0, dim = 0] = weight.shape;
  const rt = ids.rt;
  const maxBytes = options.maxBindingBytes ?? rt.maxBindingBytes;
  const pad = options.paddingIdx ?? -1;
  checkBindable('embedding', rt, ids, { shape: [...ids.shape, dim], dtype: 'f32' });
  const out = empty(rt, [...ids.shape, dim], 'f32');
  const n = out.numel;
  if (n > 0) {
    const chunks = rowChunks('embedding', weight, maxBytes);
    chunks.forEach((chunk, k) => {
      const bindings = [ids.binding(), chunk.binding, out.binding()];
      rt.dispatch(embeddingGatherSpec(weight.dtype), bindings, [n, dim, vocab, chunk.row0, chunk.rows, k === 0 ? 1 : 0, NAN_BITS], grid1d(n, 256));
    });
  }
  return record(out, 'embedding', [weight], [ids], (g, s) => {
    const [sids] = s as [Tensor];
    return [noGrad(() => embeddingGrad(g, sids, vocab, dim, pad, maxBytes))];
  });
}
