// Float64 reference for RMSNorm over the last dim.

export function rmsNormRef(x: ArrayLike<number>, weight: ArrayLike<number> | null, cols: number, eps: number): Float64Array {
  const rows = x.length / cols;
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < cols; i++) {
      const v = x[r * cols + i] ?? 0;
      ss += v * v;
    }
    const rstd = 1 / Math.sqrt(ss / cols + eps);
    for (let i = 0; i < cols; i++) {
      out[r * cols + i] = (x[r * cols + i] ?? 0) * rstd * (weight ? (weight[i] ?? 0) : 1);
    }
  }
  return out;
}
