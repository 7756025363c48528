// Blockwise 8-bit quantization against a 256-entry code map (bitsandbytes' quantize_blockwise),
// used for the nested quantization of 4-bit absmax values.
import { ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';

/**
 * Index of `x` in a sorted 256-entry map the way bitsandbytes' CUDA kernel finds it: a 7-step
 * binary search from index 127, then a float32 midpoint test against the neighbour on the side
 * of `x`. This is the nearest code except at an exact midpoint, where the index the search
 * stopped on wins (which can be the upper of the two); NaN comes out as index 0.
 */
export function dynamicIndex(x: number, code: Float32Array): number {
  let pivot = 127;
  let below = 0;
  let above = 255;
  let belowValue = -1;
  let aboveValue = 1;
  let value = code[pivot] ?? 0;
  for (let step = 64; step > 0; step >>= 1) {
    if (x > value) {
      below = pivot;
      belowValue = value;
      pivot += step;
    } else {
      above = pivot;
      aboveValue = value;
      pivot -= step;
    }
    value = code[pivot] ?? 0;
  }
  // The ends were never visited as pivots; their values come from the map, not the ±1 seeds.
  if (above === 255) aboveValue = code[255] ?? 0;
  if (below === 0) belowValue = code[0] ?? 0;
  if (x > value) {
    const mid = Math.fround(Math.fround(aboveValue + value) * 0.5);
    return x > mid ? above : pivot;
  }
  const mid = Math.fround(Math.fround(belowValue + value) * 0.5);
  return x < mid ? below : pivot;
}

export interface Blockwise8bit {
  /** One code index per value. */
  codes: Uint8Array;
  /** float32 max |x| per block. */
  absmax: Float32Array;
}

/**
 * Quantizes `values` in blocks of `blocksize`: each value times the float32 reciprocal of its
 * block's absmax, mapped with `dynamicIndex`.
 */
export function quantizeBlockwise8(values: Float32Array, code: Float32Array, blocksize: number): Blockwise8bit {
  if (code.length !== 256) {
    throw new ShapeMismatchError({ op: 'quantizeBlockwise8 code map', expected: [256], got: [code.length] });
  }
  if (!Number.isInteger(blocksize) || blocksize < 1) {
    throw new UnsupportedError({ what: 'blocksize', got: blocksize, where: 'quantizeBlockwise8' });
  }
  const n = values.length;
  const blocks = Math.ceil(n / blocksize);
  const codes = new Uint8Array(n);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const start = b * blocksize;
    const end = Math.min(start + blocksize, n);
    let m = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(values[i] ?? 0);
      if (a > m) m = a;
    }
    absmax[b] = m;
    const recip = Math.fround(1 / m);
    for (let i = start; i < end; i++) codes[i] = dynamicIndex(Math.fround((values[i] ?? 0) * recip), code);
  }
  return { codes, absmax };
}

/** `out[i] = f32(code[codes[i]] * absmax[i / blocksize])`. */
export function dequantizeBlockwise8(codes: Uint8Array, absmax: Float32Array, code: Float32Array, blocksize: number): Float32Array {
  const expectedBlocks = Math.ceil(codes.length / blocksize);
  if (absmax.length !== expectedBlocks) {
    throw new ShapeMismatchError({
      op: 'dequantizeBlockwise8 absmax',
      expected: [expectedBlocks],
      got: [absmax.length],
      detail: `${codes.length} codes in blocks of ${blocksize}`,
    });
  }
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    out[i] = (code[codes[i] ?? 0] ?? 0) * (absmax[Math.floor(i / blocksize)] ?? 0);
  }
  return out;
}
