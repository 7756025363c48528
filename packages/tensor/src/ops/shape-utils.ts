// Shape arithmetic shared by ops: broadcasting, axis normalisation, rank padding.
import { ShapeMismatchError } from '@peft-ts/errors';
import type { Shape } from '../core/tensor.js';

/** Highest rank the generic strided kernels handle. */
export const MAX_RANK = 6;

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeMismatchError({ op, expected: `shapes that broadcast with [${a.join(', ')}]`, got: b, detail: `dim ${i}: ${da} vs ${db}` });
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` read as if broadcast to `target` (0 on broadcast dims), padded to target's rank. */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const rank = target.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i] ?? 1;
    const ti = rank - shape.length + i;
    strides[ti] = d === 1 ? 0 : s;
    s *= d;
  }
  return strides;
}

/** A (possibly negative) axis as an index into a shape of `rank`. */
export function normalizeAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeMismatchError({ op, expected: `an axis in [${-rank}, ${rank - 1}]`, got: axis });
  return a;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Left-pads `values` with `fill` to MAX_RANK entries (for fixed-size uniform blocks). */
export function padRank(values: readonly number[], fill: number): number[] {
  if (values.length > MAX_RANK) throw new ShapeMismatchError({ op: 'strided kernel', expected: `rank <= ${MAX_RANK}`, got: values.length });
  return [...new Array<number>(MAX_RANK - values.length).fill(fill), ...values];
}

/**
 * Drops size-1 dims and merges each dim into the one outside it when every stride set steps
 * through both as one (outer stride = inner stride x inner size), so an index kernel decodes as
 * few dims as the layout needs: integer division per element is dear on some adapters.
 */
export function collapseDims(shape: readonly number[], ...strideSets: (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const dims: number[] = [];
  const strides: number[][] = strideSets.map(() => []);
  shape.forEach((d, k) => {
    if (d === 1) return;
    const step = strideSets.map((s) => s[k] ?? 0);
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, i) => s[last] === (step[i] ?? 0) * d)) {
      dims[last] = (dims[last] ?? 1) * d;
      strides.forEach((s, i) => (s[last] = step[i] ?? 0));
      return;
    }
    dims.push(d);
    strides.forEach((s, i) => s.push(step[i] ?? 0));
  });
  return { dims, strides };
}
