// Plain TypeScript references for the shape ops on row-major arrays.

const strides = (shape: readonly number[]): number[] => {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = (s[i + 1] ?? 1) * (shape[i + 1] ?? 1);
  return s;
};

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Multi-index of flat index j in `shape`. */
function unravel(j: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k] ?? 1;
    idx[k] = j % d;
    j = Math.floor(j / d);
  }
  return idx;
}

function ravel(idx: readonly number[], shape: readonly number[]): number {
  const s = strides(shape);
  return idx.reduce((a, c, k) => a + c * (s[k] ?? 0), 0);
}

export function permuteRef(x: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): number[] {
  const outShape = perm.map((p) => shape[p] ?? 1);
  return Array.from({ length: numel(outShape) }, (_, j) => {
    const o = unravel(j, outShape);
    const src = new Array<number>(shape.length).fill(0);
    perm.forEach((p, k) => (src[p] = o[k] ?? 0));
    return x[ravel(src, shape)] ?? NaN;
  });
}

export function narrowRef(x: ArrayLike<number>, shape: readonly number[], axis: number, start: number, length: number): number[] {
  const outShape = shape.map((d, i) => (i === axis ? length : d));
  return Array.from({ length: numel(outShape) }, (_, j) => {
    const o = unravel(j, outShape);
    o[axis] = (o[axis] ?? 0) + start;
    return x[ravel(o, shape)] ?? NaN;
  });
}

export function concatRef(parts: readonly { data: ArrayLike<number>; shape: readonly number[] }[], axis: number): number[] {
  const first = parts[0]?.shape ?? [];
  const total = parts.reduce((a, p) => a + (p.shape[axis] ?? 0), 0);
  const outShape = first.map((d, i) => (i === axis ? total : d));
  return Array.from({ length: numel(outShape) }, (_, j) => {
    const o = unravel(j, outShape);
    let c = o[axis] ?? 0;
    for (const p of parts) {
      const len = p.shape[axis] ?? 0;
      if (c < len) {
        o[axis] = c;
        return p.data[ravel(o, p.shape)] ?? NaN;
      }
      c -= len;
    }
    return NaN;
  });
}

export function expandRef(x: ArrayLike<number>, shape: readonly number[], target: readonly number[]): number[] {
  const lead = target.length - shape.length;
  return Array.from({ length: numel(target) }, (_, j) => {
    const o = unravel(j, target).slice(lead);
    const src = o.map((c, i) => ((shape[i] ?? 1) === 1 ? 0 : c));
    return x[ravel(src, shape)] ?? NaN;
  });
}
