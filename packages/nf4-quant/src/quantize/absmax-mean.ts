// The float32 mean of the absmax values that double quantization subtracts (`offset`), in a
// fixed summation order of this package's own, with a stated error bound.

/**
 * Float32 mean of `values`: eight interleaved float32 partial sums (element i goes to partial
 * i mod 8), folded as ((p0+p4) + (p1+p5)) + ((p2+p6) + (p3+p7)), times the float32 reciprocal
 * of the count. Every term passes through at most d = ceil(n/8) + 2 roundings, so the result
 * is within ((1 + g)(1 + u)^2 - 1) of the exact mean (relative), u = 2^-24, g = d u / (1 - d u).
 * bitsandbytes stores torch's GPU `mean`, whose float32 order depends on n, the torch version
 * and the device and is not reproduced here: the two can differ in their last bits (equal on
 * 35 of the 38 fixture vectors, within 2 ulps on all). Readers use the stored offset.
 */
export function absmaxMean(values: Float32Array): number {
  const n = values.length;
  const p = new Float32Array(8);
  for (let i = 0; i < n; i++) p[i & 7] = (p[i & 7] ?? 0) + (values[i] ?? 0);
  const f = Math.fround;
  const lane = (k: number) => f((p[k] ?? 0) + (p[k + 4] ?? 0));
  const sum = f(f(lane(0) + lane(1)) + f(lane(2) + lane(3)));
  return f(sum * f(1 / n));
}
