// Raw (unrecorded) copies the shape ops are built from: views on shared storage, strided
// gathers, and concatenation along an axis.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { empty } from '../../../core/create.js';
import type { DType } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { numelOf, stridesOf, Tensor, type Shape } from '../../../core/tensor.js';
import { collapseDims, MAX_RANK, padRank } from '../../shape-utils.js';
import { checkBindable } from '../common/bindable.js';
import { CONCAT_SOURCES, concatSpec, copyRowsSpec, perWord, stridedCopySpec } from './shape.kernel.js';

const COPYABLE: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'u32'];

export const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Throws unless the copy kernels handle `dtype` and `rank`. */
export function checkCopyable(op: string, t: Tensor, rank = t.ndim): void {
  if (!COPYABLE.includes(t.dtype)) throw new DTypeError({ op, expected: COPYABLE.join(' | '), got: t.dtype });
  if (rank > MAX_RANK) throw new ShapeMismatchError({ op, expected: `rank <= ${MAX_RANK}`, got: t.shape });
}

/** A new handle on `t`'s storage with another shape (and byte offset); no autograd link. */
export function viewOf(t: Tensor, shape: Shape, byteOffset = t.byteOffset): Tensor {
  t.assertAlive('view');
  t.storage.refs += 1;
  return new Tensor(t.rt, t.storage, shape, t.dtype, byteOffset);
}

/** out (contiguous, `outShape`, dtype `to`)[c] = x.flat[offset + sum_k c_k * strides[k]]. */
export function stridedCopy(op: string, x: Tensor, outShape: Shape, offset: number, strides: readonly number[], to: DType = x.dtype): Tensor {
  checkBindable(op, x.rt, x, { shape: outShape, dtype: to });
  const out = empty(x.rt, outShape, to);
  const n = out.numel;
  const words = Math.ceil(n / perWord(to));
  // Size-1 dims drop out, and a dim merges into the one outside it when the source steps through both as one.
  const { dims, strides: [steps = []] } = collapseDims(outShape, strides);
  const uniforms = [n, offset, ...padRank(dims, 1), ...padRank(steps, 0)];
  x.rt.dispatch(stridedCopySpec(x.dtype, to, dims.length), [x.binding(), out.binding()], uniforms, grid1d(words, 256));
  return out;
}

/** Places `pieces` (contiguous, equal but for `axis`) at `starts` along `axis` of a new tensor of `shape`. */
export function concatInto(pieces: readonly Tensor[], starts: readonly number[], axis: number, shape: Shape, dtype: DType): Tensor {
  const rt = pieces[0]?.rt;
  if (!rt) throw new ShapeMismatchError({ op: 'concat', expected: 'at least one tensor', got: [] });
  checkBindable('concat', rt, ...pieces, { shape, dtype });
  const out = empty(rt, shape, dtype);
  const n = out.numel;
  const inner = numelOf(shape.slice(axis + 1));
  const ctot = shape[axis] ?? 1;
  const maxGroups = rt.gpu.info.limits.maxComputeWorkgroupsPerDimension;
  const widest = Math.max(...pieces.map((p) => (p.shape[axis] ?? 1) * inner));
  if (perWord(dtype) === 1 && n > 0 && Math.ceil(widest / 256) <= maxGroups) {
    // 32-bit elements: each piece is a block of whole rows of the output viewed as
    // [outer, ctot * inner], copied on its own (no per-element search over the pieces).
    const outer = n / (ctot * inner);
    const ordered = pieces.map((p, k) => ({ p, start: starts[k] ?? 0, len: p.shape[axis] ?? 1 })).sort((a, b) => a.start - b.start);
    let end = 0;
    let tiles = true;
    for (const q of ordered) {
      if (q.start !== end) tiles = false;
      end = q.start + q.len;
    }
    // Positions no piece covers are zero.
    if (!tiles || end !== ctot) rt.clear(out.binding(), out.byteLength);
    const spec = copyRowsSpec();
    const maxRows = maxGroups;
    for (const q of ordered) {
      const cols = q.len * inner;
      if (cols === 0) continue;
      for (let r0 = 0; r0 < outer; r0 += maxRows) {
        const rc = Math.min(maxRows, outer - r0);
        rt.dispatch(spec, [q.p.binding(), out.binding()], [outer, cols, ctot * inner, q.start * inner, r0], [Math.ceil(cols / 256), rc, 1]);
      }
    }
    return out;
  }
  const words = Math.ceil(n / perWord(dtype));
  for (let g = 0; g === 0 || g < pieces.length; g += CONCAT_SOURCES) {
    const group = pieces.slice(g, g + CONCAT_SOURCES);
    const uniforms = [n, inner, ctot];
    group.forEach((p, k) => uniforms.push(starts[g + k] ?? 0, p.shape[axis] ?? 1));
    const bindings = [...group.map((p) => p.binding()), out.binding()];
    rt.dispatch(concatSpec(dtype, group.length, g > 0), bindings, uniforms, grid1d(words, 256));
  }
  return out;
}

/** A contiguous copy of x's elements [start, start + length) along `axis`. */
export function narrowCopy(x: Tensor, axis: number, start: number, length: number): Tensor {
  const strides = stridesOf(x.shape);
  const shape = x.shape.map((d, i) => (i === axis ? length : d));
  return stridedCopy('narrow', x, shape, start * (strides[axis] ?? 0), strides);
}
