// Float64 reference for LayerNorm over the last dim (biased variance).

export function layerNormRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  cols: number,
  eps: number,
): Float64Array {
  const rows = x.length / cols;
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < cols; i++) mean += x[r * cols + i] ?? 0;
    mean /= cols;
    let v = 0;
    for (let i = 0; i < cols; i++) v += ((x[r * cols + i] ?? 0) - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / cols + eps);
    for (let i = 0; i < cols; i++) {
      const h = ((x[r * cols + i] ?? 0) - mean) * rstd;
      out[r * cols + i] = h * (weight ? (weight[i] ?? 0) : 1) + (bias ? (bias[i] ?? 0) : 0);
    }
  }
  return out;
}
