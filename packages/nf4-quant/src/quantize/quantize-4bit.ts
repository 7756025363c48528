// Blockwise 4-bit quantization (NF4/FP4) reproducing the bytes of bitsandbytes' CUDA kernel,
// with optional double quantization of the absmax values.
import { ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { DYNAMIC_MAP_SIGNED } from '../codes/dynamic-map.js';
import { QUANT_TYPES, fp4Index, nf4Index, type QuantType } from '../codes/four-bit-codes.js';
import { absmaxMean } from './absmax-mean.js';
import { quantizeBlockwise8 } from './blockwise-8bit.js';
import { widenInput } from './input.js';
import type { Quantized4bit, QuantizeInput, SourceDType } from './types.js';

/** bitsandbytes' fixed block size for the nested quantization of absmax values. */
export const NESTED_BLOCKSIZE = 256;

/** Block sizes the 4-bit kernels accept. */
export const BLOCKSIZES: readonly number[] = Object.freeze([32, 64, 128, 256, 512, 1024, 2048, 4096]);

export interface QuantizeOptions {
  /** 'nf4' (default) or 'fp4'. */
  type?: QuantType;
  /** Elements per absmax block: a power of two from 32 to 4096 (default 64). */
  blocksize?: number;
  /** Quantize the absmax values to 8 bits as well (bitsandbytes' compress_statistics; default false). */
  doubleQuant?: boolean;
  /** Shape to record (default `[n]`); its product must be the number of elements. */
  shape?: readonly number[];
  /** Original dtype to record, when the values were widened before this call (default: from the input). */
  dtype?: SourceDType;
}

export function checkQuantType(type: unknown, where: string): QuantType {
  if (type === 'nf4' || type === 'fp4') return type;
  throw new UnsupportedError({ what: 'quant type', got: type, supported: QUANT_TYPES, where });
}

export function checkBlocksize(blocksize: unknown, where: string): number {
  if (typeof blocksize === 'number' && BLOCKSIZES.includes(blocksize)) return blocksize;
  throw new UnsupportedError({ what: 'blocksize', got: blocksize, supported: BLOCKSIZES.map(String), where });
}

/**
 * Quantizes a tensor to 4 bits. Per block: absmax = float32 max |x|; each value is multiplied by
 * the float32 reciprocal of absmax and mapped to the 4-bit index the CUDA kernel picks; pairs of
 * indices are packed high nibble first. An all-zero block scales to NaN and stores index 0, as
 * the kernel does (it still dequantizes to zero, since its absmax is zero).
 */
export function quantize(input: QuantizeInput, options: QuantizeOptions = {}): Quantized4bit {
  const { values, dtype: inputDType } = widenInput(input, 'quantize');
  const quantType = checkQuantType(options.type ?? 'nf4', 'quantize');
  const blocksize = checkBlocksize(options.blocksize ?? 64, 'quantize');
  const n = values.length;
  const shape = options.shape ? [...options.shape] : [n];
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || shape.reduce((a, b) => a * b, 1) !== n) {
    throw new ShapeMismatchError({ op: 'quantize', expected: `a shape with ${n} elements`, got: shape });
  }
  if (n === 0) {
    throw new ShapeMismatchError({ op: 'quantize', expected: 'at least one element', got: shape });
  }

  const absmax = computeAbsmax(values, blocksize);
  const packed = packIndices(values, absmax, blocksize, quantType);
  const base = { quantType, blocksize, shape, dtype: options.dtype ?? inputDType, packed };
  if (!options.doubleQuant) return { ...base, doubleQuant: false, absmax };
  return { ...base, doubleQuant: true, ...nestAbsmax(absmax) };
}

/** float32 max |x| of each block of `blocksize` values (NaN is skipped, as fmaxf skips it). */
export function computeAbsmax(values: Float32Array, blocksize: number): Float32Array {
  const n = values.length;
  const absmax = new Float32Array(Math.ceil(n / blocksize));
  for (let b = 0, i = 0; i < n; b++) {
    const end = Math.min(i + blocksize, n);
    let m = 0;
    for (; i < end; i++) {
      const a = Math.abs(values[i] ?? 0);
      if (a > m) m = a;
    }
    absmax[b] = m;
  }
  return absmax;
}

/** The nested (double) quantization of absmax values: offset, 8-bit codes, group maxima. */
export interface NestedAbsmax {
  qabsmax: Uint8Array;
  nestedAbsmax: Float32Array;
  offset: number;
  nestedBlocksize: number;
}

/**
 * Subtracts the float32 mean of `absmax` and quantizes the result blockwise (256) to the
 * signed dynamic map.
 */
export function nestAbsmax(absmax: Float32Array): NestedAbsmax {
  const offset = absmaxMean(absmax);
  const centred = new Float32Array(absmax.length);
  for (let i = 0; i < absmax.length; i++) centred[i] = (absmax[i] ?? 0) - offset;
  const nested = quantizeBlockwise8(centred, DYNAMIC_MAP_SIGNED, NESTED_BLOCKSIZE);
  return { qabsmax: nested.codes, nestedAbsmax: nested.absmax, offset, nestedBlocksize: NESTED_BLOCKSIZE };
}

/** The packed 4-bit indices of `values` given their block absmax. */
export function packIndices(values: Float32Array, absmax: Float32Array, blocksize: number, quantType: QuantType): Uint8Array {
  return quantType === 'nf4' ? pack(values, absmax, blocksize, nf4Index) : pack(values, absmax, blocksize, fp4Index);
}

function pack(values: Float32Array, absmax: Float32Array, blocksize: number, index: (scaled: number) => number): Uint8Array {
  const n = values.length;
  const packed = new Uint8Array((n + 1) >> 1);
  for (let b = 0, i = 0; i < n; b++) {
    const end = Math.min(i + blocksize, n);
    const recip = Math.fround(1 / (absmax[b] ?? 0));
    // blocksize is even, so every block starts on a byte boundary.
    for (; i < end; i++) {
      const q = index(Math.fround((values[i] ?? 0) * recip));
      if ((i & 1) === 0) packed[i >> 1] = q << 4;
      else packed[i >> 1] = (packed[i >> 1] ?? 0) | q;
    }
    // An odd-length tensor's missing last element is a 0.0 scaled like the rest of its block.
    if (end === n && (n & 1) === 1) packed[n >> 1] = (packed[n >> 1] ?? 0) | index(Math.fround(0 * recip));
  }
  return packed;
}
