// Float64 reference for rotary embeddings (rotate_half convention, partial rotary dims), reading
// cos/sin rows of a [positions, rotaryDim] table by position id.

/** x [B, T, H, D] ('bthd') or [B, H, T, D] ('bhtd'); positions [B*T] or [T]. */
export function rotaryRef(
  x: ArrayLike<number>,
  shape: readonly [number, number, number, number],
  layout: 'bthd' | 'bhtd',
  positions: ArrayLike<number>,
  cos: ArrayLike<number>,
  sin: ArrayLike<number>,
  rotaryDim: number,
): Float64Array {
  const [B, d1, d2, D] = shape;
  const [H, T] = layout === 'bthd' ? [d2, d1] : [d1, d2];
  const half = rotaryDim / 2;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const pos = positions.length === T ? (positions[t] ?? 0) : (positions[b * T + t] ?? 0);
      for (let h = 0; h < H; h++) {
        const base = layout === 'bthd' ? ((b * T + t) * H + h) * D : ((b * H + h) * T + t) * D;
        for (let d = 0; d < D; d++) {
          const v = x[base + d] ?? 0;
          if (d >= rotaryDim) {
            out[base + d] = v;
            continue;
          }
          const rotated = d < half ? -(x[base + d + half] ?? 0) : (x[base + d - half] ?? 0);
          out[base + d] = v * (cos[pos * rotaryDim + d] ?? NaN) + rotated * (sin[pos * rotaryDim + d] ?? NaN);
        }
      }
    }
  }
  return out;
}
