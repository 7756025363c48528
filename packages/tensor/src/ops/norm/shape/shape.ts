// Shape ops: reshape (a view), permute/transpose, expand, contiguous, narrow/split and concat,
// each with its gradient.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { clone, record } from '../../../core/autograd.js';
import { DTYPE_BYTES } from '../../../core/dtype.js';
import { noGrad, numelOf, stridesOf, type Shape, type Tensor } from '../../../core/tensor.js';
import { sumTo } from '../../reduce/sum-to.js';
import { broadcastStrides, normalizeAxis } from '../../shape-utils.js';
import { checkCopyable, concatInto, fmt, narrowCopy, stridedCopy, viewOf } from './copy.js';

/** `shape` with a single -1 resolved so that it holds `numel` elements. */
function resolveShape(op: string, from: Shape, shape: Shape): number[] {
  const numel = numelOf(from);
  const free = shape.filter((d) => d === -1).length;
  const bad = shape.some((d) => !Number.isInteger(d) || d < -1);
  const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
  if (bad || free > 1 || (free === 1 && (known === 0 || numel % known !== 0)) || (free === 0 && known !== numel)) {
    throw new ShapeMismatchError({ op, expected: `a shape with ${numel} elements (from ${fmt(from)}), at most one -1`, got: shape });
  }
  return shape.map((d) => (d === -1 ? numel / known : d));
}

/** The same elements under another shape (one dim may be -1). A view: no copy, storage shared. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const out = viewOf(x, resolveShape('reshape', x.shape, shape));
  return record(out, 'reshape', [x], [], (g) => [viewOf(g, x.shape)]);
}

function checkPermutation(op: string, x: Tensor, dims: readonly number[]): number[] {
  const rank = x.ndim;
  const perm = dims.map((d) => (Number.isInteger(d) && d >= -rank && d < rank ? (d < 0 ? d + rank : d) : -1));
  if (perm.length !== rank || perm.includes(-1) || new Set(perm).size !== rank) {
    throw new ShapeMismatchError({ op, expected: `a permutation of the ${rank} dims of ${fmt(x.shape)}`, got: dims });
  }
  return perm;
}

function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  const strides = stridesOf(x.shape);
  return stridedCopy(
    'permute',
    x,
    perm.map((p) => x.shape[p] ?? 1),
    0,
    perm.map((p) => strides[p] ?? 0),
  );
}

/** Reorders dims: out.shape[k] = x.shape[dims[k]] (a copy; rank <= 6). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const perm = checkPermutation('permute', x, dims);
  checkCopyable('permute', x);
  const out = permuteRaw(x, perm);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, k) => (inverse[p] = k));
  return record(out, 'permute', [x], [], (g) => [noGrad(() => permuteRaw(g, inverse))]);
}

/** Swaps two dims (a copy). */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normalizeAxis('transpose', dim0, x.ndim);
  const b = normalizeAxis('transpose', dim1, x.ndim);
  const perm = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

/** Repeats size-1 dims (and adds leading ones) to reach `shape`, NumPy style; -1 keeps a dim. A copy. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const lead = shape.length - x.ndim;
  const target = shape.map((d, i) => (d === -1 && i >= lead ? (x.shape[i - lead] ?? 1) : d));
  const ok =
    lead >= 0 &&
    target.every((d, i) => Number.isInteger(d) && d >= 0 && (i < lead || x.shape[i - lead] === d || x.shape[i - lead] === 1));
  if (!ok) throw new ShapeMismatchError({ op: 'expand', expected: `a shape ${fmt(x.shape)} broadcasts to`, got: shape });
  checkCopyable('expand', x, target.length);
  const out = stridedCopy('expand', x, target, 0, broadcastStrides(x.shape, target));
  return record(out, 'expand', [x], [], (g) => [noGrad(() => sumTo(g, x.shape))]);
}

/** expand() under NumPy's name. */
export const broadcastTo = expand;

/** A copy of x with its own storage (every Tensor is row-major already; this detaches a view). */
export function contiguous(x: Tensor): Tensor {
  const out = clone(x, 'activations');
  return record(out, 'contiguous', [x], [], (g) => [viewOf(g, g.shape)]);
}

function narrowBackward(g: Tensor, shape: Shape, axis: number, start: number): Tensor {
  return concatInto([g], [start], axis, shape, 'f32');
}

/**
 * Elements [start, start + length) of `axis`. When the slice is one contiguous block (every dim
 * before `axis` is 1) that starts at a byte offset the device can bind, the result is a view on
 * x's storage; otherwise a copy.
 */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis('narrow', axis, x.ndim);
  const size = x.shape[a] ?? 0;
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > size) {
    throw new ShapeMismatchError({ op: 'narrow', expected: `start and length within dim ${a} (size ${size}) of ${fmt(x.shape)}`, got: [start, length] });
  }
  checkCopyable('narrow', x);
  const shape = x.shape.map((d, i) => (i === a ? length : d));
  const offsetBytes = start * (stridesOf(x.shape)[a] ?? 0) * DTYPE_BYTES[x.dtype];
  // An empty view could sit at the very end of the buffer, where no binding fits: copy instead.
  const contiguousBlock = length > 0 && x.shape.slice(0, a).every((d) => d === 1);
  const align = x.rt.gpu.info.limits.minStorageBufferOffsetAlignment;
  const out = contiguousBlock && (x.byteOffset + offsetBytes) % align === 0 ? viewOf(x, shape, x.byteOffset + offsetBytes) : narrowCopy(x, a, start, length);
  return record(out, 'narrow', [x], [], (g) => [noGrad(() => narrowBackward(g, x.shape, a, start))]);
}

/**
 * Splits `axis` into pieces: `sizes` lists their lengths (summing to the dim), or a number gives
 * pieces of that length with a shorter last one.
 */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normalizeAxis('split', axis, x.ndim);
  const dim = x.shape[a] ?? 0;
  let lengths: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes <= 0) throw new ShapeMismatchError({ op: 'split', expected: 'a positive piece length', got: sizes });
    lengths = [];
    for (let at = 0; at < dim; at += sizes) lengths.push(Math.min(sizes, dim - at));
  } else {
    lengths = [...sizes];
    if (lengths.some((s) => !Number.isInteger(s) || s < 0) || lengths.reduce((p, s) => p + s, 0) !== dim) {
      throw new ShapeMismatchError({ op: 'split', expected: `sizes summing to dim ${a} (${dim}) of ${fmt(x.shape)}`, got: sizes });
    }
  }
  let at = 0;
  return lengths.map((len) => {
    const piece = narrow(x, a, at, len);
    at += len;
    return piece;
  });
}

/** Joins tensors along `axis` (equal dtype and shapes but for that axis). */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  const first = tensors[0];
  if (!first) throw new ShapeMismatchError({ op: 'concat', expected: 'at least one tensor', got: [] });
  const a = normalizeAxis('concat', axis, first.ndim);
  const shapes = tensors.map((t) => fmt(t.shape)).join(', ');
  for (const t of tensors) {
    if (t.dtype !== first.dtype) throw new DTypeError({ op: 'concat', expected: `one dtype (${first.dtype})`, got: tensors.map((u) => u.dtype).join(', ') });
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeMismatchError({ op: 'concat', expected: `shapes equal but for dim ${a}`, got: shapes });
    }
    checkCopyable('concat', t);
  }
  const starts: number[] = [];
  let total = 0;
  for (const t of tensors) {
    starts.push(total);
    total += t.shape[a] ?? 0;
  }
  const shape = first.shape.map((d, i) => (i === a ? total : d));
  const out = tensors.length === 1 ? clone(first, 'activations') : concatInto(tensors, starts, a, shape, first.dtype);
  return record(out, 'concat', tensors, [], (g) =>
    noGrad(() => tensors.map((t, k) => (t.requiresGrad ? narrowCopy(g, a, starts[k] ?? 0, t.shape[a] ?? 0) : null))),
  );
}
