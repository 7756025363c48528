// Float64 references for sum / mean / max / argmax over one axis or all elements.
import type { Shape } from '../../../core/tensor.js';

function split(shape: Shape, axis: number | undefined): { outer: number; R: number; inner: number } {
  const n = shape.reduce((a, b) => a * b, 1);
  if (axis === undefined) return { outer: 1, R: n, inner: 1 };
  const a = axis < 0 ? axis + shape.length : axis;
  return {
    outer: shape.slice(0, a).reduce((x, y) => x * y, 1),
    R: shape[a] ?? 1,
    inner: shape.slice(a + 1).reduce((x, y) => x * y, 1),
  };
}

export function sumRef(x: ArrayLike<number>, shape: Shape, axis?: number, mean = false): Float64Array {
  const { outer, R, inner } = split(shape, axis);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let s = 0;
      for (let r = 0; r < R; r++) s += x[(o * R + r) * inner + j] ?? 0;
      out[o * inner + j] = mean ? s / R : s;
    }
  }
  return out;
}

/** Max values and the position of the first maximum (NaN counts as the largest value). */
export function maxRef(x: ArrayLike<number>, shape: Shape, axis?: number): { values: Float64Array; indices: Int32Array } {
  const { outer, R, inner } = split(shape, axis);
  const values = new Float64Array(outer * inner);
  const indices = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = -Infinity;
      let at = -1;
      for (let r = 0; r < R; r++) {
        const v = x[(o * R + r) * inner + j] ?? 0;
        if (Number.isNaN(best)) break;
        if (at < 0 || v > best || Number.isNaN(v)) {
          best = v;
          at = r;
        }
      }
      values[o * inner + j] = best;
      indices[o * inner + j] = at;
    }
  }
  return { values, indices };
}

/** Output shape of a reduction. */
export function reducedShape(shape: Shape, axis: number | undefined, keepdim: boolean): number[] {
  if (axis === undefined) return keepdim ? shape.map(() => 1) : [];
  const a = axis < 0 ? axis + shape.length : axis;
  return keepdim ? shape.map((d, i) => (i === a ? 1 : d)) : shape.filter((_, i) => i !== a);
}
