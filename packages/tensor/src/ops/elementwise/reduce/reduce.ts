// sum / mean / max / argmax over one axis or over all elements, with backward rules. The last
// (contiguous) axis takes one workgroup per row; other axes a column-tiled strided kernel.
import { ShapeMismatchError } from '@peft-ts/errors';
import { needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { assertDType, DTYPE_BYTES, FLOAT_DTYPES } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import type { Runtime } from '../../../core/runtime.js';
import { noGrad, Tensor, type Shape } from '../../../core/tensor.js';
import { normalizeAxis } from '../../shape-utils.js';
import { assertBindable, planRowChunks, rowsBinding } from '../chunks.js';
import { reduceMode } from '../wg-reduce.js';
import { reduceBackwardSpec, rowReduceSpec, STRIDED_COLS, stridedReduceSpec, type ReduceKind } from './reduce.kernel.js';

/** Elements per workgroup in the first pass of a reduction over all elements. */
const SEGMENT = 4096;

/** Workgroup size for rows of `len` elements: short rows waste fewer idle invocations at 64. */
export function rowWorkgroupSize(len: number): number {
  return len <= 1024 ? 64 : 256;
}

interface Plan {
  outer: number;
  R: number;
  inner: number;
  outShape: number[];
}

function planReduce(op: string, shape: Shape, axis: number | undefined, keepdim: boolean): Plan {
  const n = shape.reduce((a, b) => a * b, 1);
  if (axis === undefined) return { outer: 1, R: n, inner: 1, outShape: keepdim ? shape.map(() => 1) : [] };
  const a = normalizeAxis(op, axis, shape.length);
  const outer = shape.slice(0, a).reduce((x, y) => x * y, 1);
  const inner = shape.slice(a + 1).reduce((x, y) => x * y, 1);
  const outShape = keepdim ? shape.map((d, i) => (i === a ? 1 : d)) : shape.filter((_, i) => i !== a);
  return { outer, R: shape[a] ?? 1, inner, outShape };
}

interface Reduced {
  values: Tensor;
  /** max only: i32 position along the axis (flat index for a reduction over all elements). */
  indices: Tensor | null;
}

/**
 * `rows` rows of `L` elements of `x` (the last row may be short; `n` in all), one output per row. `idxIn`
 * makes it a later pass of an all-elements max (indices carried from the pass before).
 */
function reduceRows(kind: ReduceKind, x: Tensor, rows: number, n: number, L: number, scale: number, flatIndex: boolean, idxIn: Tensor | null): Reduced {
  const rt = x.rt;
  const values = empty(rt, [rows], 'f32');
  const indices = kind === 'max' ? empty(rt, [rows], 'i32') : null;
  const xb = DTYPE_BYTES[x.dtype];
  const wg = rowWorkgroupSize(L);
  const spec = rowReduceSpec(kind, x.dtype, reduceMode(rt), wg, idxIn !== null);
  assertBindable(rt, kind, values);
  for (const c of planRowChunks(rt, kind, rows, idxIn ? [L * xb, L * 4] : [L * xb])) {
    const count = Math.min(c.count * L, n - c.start * L);
    const bindings = [rowsBinding(x, c, L * xb)];
    if (idxIn) bindings.push(rowsBinding(idxIn, c, L * 4));
    bindings.push(values.binding());
    if (indices) bindings.push(indices.binding());
    rt.dispatch(spec, bindings, [count, L, c.count, c.start, scale, flatIndex ? c.start * L : 0, flatIndex ? 1 : 0], grid1d(c.count, 1));
  }
  return { values, indices };
}

function reduceStrided(kind: ReduceKind, x: Tensor, p: Plan, scale: number): Reduced {
  const rt = x.rt;
  assertBindable(rt, kind, x);
  const values = empty(rt, [p.outer * p.inner], 'f32');
  const indices = kind === 'max' ? empty(rt, [p.outer * p.inner], 'i32') : null;
  const colBlocks = Math.ceil(p.inner / STRIDED_COLS);
  const bindings = [x.binding(), values.binding()];
  if (indices) bindings.push(indices.binding());
  rt.dispatch(stridedReduceSpec(kind, x.dtype), bindings, [p.outer, p.R, p.inner, colBlocks, scale], grid1d(p.outer * colBlocks, 1));
  return { values, indices };
}

/** Reduces over all elements: segments first, then the partial results, until one is left. */
function reduceAll(kind: ReduceKind, x: Tensor, scale: number): Reduced {
  const n = x.numel;
  if (n <= SEGMENT) return reduceRows(kind, x, 1, n, n, scale, true, null);
  let cur = reduceRows(kind, x, Math.ceil(n / SEGMENT), n, SEGMENT, 1, true, null);
  while (cur.values.numel > 1) {
    const m = cur.values.numel;
    const L = Math.min(m, SEGMENT);
    const next = reduceRows(kind, cur.values, Math.ceil(m / L), m, L, L === m ? scale : 1, false, cur.indices);
    cur.values.dispose();
    cur.indices?.dispose();
    cur = next;
  }
  return cur;
}

function reduce(kind: ReduceKind, op: string, x: Tensor, axis: number | undefined, keepdim: boolean, mean: boolean): { out: Reduced; plan: Plan; scale: number } {
  assertDType(op, x.dtype, FLOAT_DTYPES);
  const plan = planReduce(op, x.shape, axis, keepdim);
  if (kind === 'max' && plan.R === 0 && plan.outer * plan.inner > 0) {
    throw new ShapeMismatchError({ op, expected: 'a non-empty dimension to reduce', got: x.shape, detail: axis === undefined ? 'no elements' : `axis ${axis}` });
  }
  const scale = mean ? 1 / plan.R : 1;
  let out: Reduced;
  if (plan.outer * plan.inner === 0) out = { values: empty(x.rt, [0], 'f32'), indices: kind === 'max' ? empty(x.rt, [0], 'i32') : null };
  else if (axis === undefined) out = reduceAll(kind, x, scale);
  else if (plan.inner === 1) out = reduceRows(kind, x, plan.outer, plan.outer * plan.R, plan.R, scale, false, null);
  else out = reduceStrided(kind, x, plan, scale);
  return { out, plan, scale };
}

function backwardExpand(kind: ReduceKind, rt: Runtime, xShape: Shape, xNumel: number, plan: Plan, scale: number, g: Tensor, idx: Tensor | null): Tensor {
  const dx = empty(rt, xShape, 'f32');
  if (xNumel === 0) return dx;
  const spec = reduceBackwardSpec(kind);
  assertBindable(rt, `${kind} backward`, g);
  for (const c of planRowChunks(rt, `${kind} backward`, xNumel, [4])) {
    const bindings = [g.binding()];
    if (idx) bindings.push(idx.binding());
    bindings.push(rowsBinding(dx, c, 4));
    rt.dispatch(spec, bindings, [c.count, c.start, plan.R, plan.inner, scale], grid1d(c.count, 256));
  }
  return dx;
}

function finish(kind: ReduceKind, op: string, x: Tensor, r: { out: Reduced; plan: Plan; scale: number }): Tensor {
  const { out, plan, scale } = r;
  const values = reshapeOwned(out.values, plan.outShape);
  const indices = out.indices;
  if (!needsGrad(x)) {
    indices?.dispose();
    return values;
  }
  const xShape = x.shape;
  const xNumel = x.numel;
  const rt = x.rt;
  const result = record(values, op, [x], indices ? [indices] : [], (g, saved) => noGrad(() => [backwardExpand(kind, rt, xShape, xNumel, plan, scale, g, saved[0] ?? null)]));
  indices?.dispose();
  return result;
}

/** `t` with another shape of the same size (same storage); `t`'s handle is consumed. */
function reshapeOwned(t: Tensor, shape: Shape): Tensor {
  if (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
  t.storage.refs += 1;
  const out = new Tensor(t.rt, t.storage, shape, t.dtype, t.byteOffset);
  t.dispose();
  return out;
}

/**
 * Sum over `axis` (all elements when omitted); `keepdim` keeps the reduced axis as size 1. Each
 * invocation adds its elements in blocks of 32 and the workgroup folds the partial sums as a tree,
 * so rows of many thousands stay accurate in f32.
 */
export function sum(x: Tensor, axis?: number, keepdim = false): Tensor {
  return finish('sum', 'sum', x, reduce('sum', 'sum', x, axis, keepdim, false));
}

/** Mean over `axis` (all elements when omitted); NaN over an empty axis, as in torch. */
export function mean(x: Tensor, axis?: number, keepdim = false): Tensor {
  return finish('sum', 'mean', x, reduce('sum', 'mean', x, axis, keepdim, true));
}

/**
 * Maximum over `axis` (all elements when omitted). NaN wins (propagates); -0 and +0 tie. The
 * gradient goes to the first position holding the maximum, as torch's max(dim) does.
 */
export function max(x: Tensor, axis?: number, keepdim = false): Tensor {
  return finish('max', 'max', x, reduce('max', 'max', x, axis, keepdim, false));
}

/** Index (i32) of the first maximum along `axis`, or the flat index over all elements when omitted. */
export function argmax(x: Tensor, axis?: number, keepdim = false): Tensor {
  const { out, plan } = noGrad(() => reduce('max', 'argmax', x, axis, keepdim, false));
  out.values.dispose();
  if (!out.indices) throw new Error('argmax: the max kernel returned no indices');
  return reshapeOwned(out.indices, plan.outShape);
}
