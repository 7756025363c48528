// Plain blockwise absmax int4, the baseline NF4 and FP4 are measured against: symmetric, 15
// evenly spaced levels -7..7 (so zero is exact and the range is symmetric), one float32 scale
// per block.
import { checkBlocksize, computeAbsmax } from '../quantize/quantize-4bit.js';

export interface Int4Absmax {
  /** Signed level per element, in -7..7. */
  levels: Int8Array;
  /** float32 absmax per block. */
  absmax: Float32Array;
  blocksize: number;
}

/** level = round(7 * x / absmax) with ties away from zero; an all-zero block stores zeros. */
export function quantizeInt4Absmax(values: Float32Array, blocksize = 64): Int4Absmax {
  checkBlocksize(blocksize, 'quantizeInt4Absmax');
  const absmax = computeAbsmax(values, blocksize);
  const levels = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const m = absmax[Math.floor(i / blocksize)] ?? 0;
    if (m === 0) continue;
    const scaled = (7 * (values[i] ?? 0)) / m;
    levels[i] = Math.sign(scaled) * Math.min(7, Math.round(Math.abs(scaled)));
  }
  return { levels, absmax, blocksize };
}

/** x' = f32(level / 7 * absmax). */
export function dequantizeInt4Absmax(q: Int4Absmax): Float32Array {
  const out = new Float32Array(q.levels.length);
  for (let i = 0; i < out.length; i++) out[i] = ((q.levels[i] ?? 0) / 7) * (q.absmax[Math.floor(i / q.blocksize)] ?? 0);
  return out;
}
