// The float32 mean of the absmax values that double quantization subtracts (`offset`), summed
// in the order that reproduces the offsets bitsandbytes' CUDA path stores.

/**
 * Float32 mean in the summation order that best reproduces the offsets bitsandbytes' CUDA path
 * stored in the fixtures: eight interleaved float32 partial sums (element i goes to partial
 * i mod 8), folded as ((p0+p4) + (p1+p5)) + ((p2+p6) + (p3+p7)), times the float32 reciprocal
 * of the count. It matches all 24 offsets of bnb4bit.safetensors (12 distinct absmax
 * vectors) and 11 of the 14 in llama-bnb-nf4 (the other three are 1-2 ulps off); a float64
 * sum, a sequential float32 sum and a plain pairwise sum each match fewer. The fixtures hold at most 160 blocks per tensor;
 * for bigger tensors the GPU's float32 reduction order is not reproduced, so the offset can
 * differ from bitsandbytes' in its last bits. Files stay interchangeable either way: readers
 * use the stored offset.
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
