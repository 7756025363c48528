// Memory math for 4-bit weights: how many bytes a tensor of n parameters takes once quantized.
import { checkBlocksize, NESTED_BLOCKSIZE } from './quantize-4bit.js';

export interface QuantizedBytesOptions {
  /** Elements per absmax block (default 64). */
  blocksize?: number;
  /** Whether absmax values are quantized to 8 bits (default false). */
  doubleQuant?: boolean;
}

/** Byte counts of one quantized tensor, by part. */
export interface QuantizedBytes {
  /** Packed 4-bit indices: ceil(n / 2). */
  packed: number;
  /** Block scales: 4 bytes per block (float32), or 1 byte per block (8-bit codes) with double quant. */
  absmax: number;
  /** float32 max per group of 256 blocks (double quant only). */
  nestedAbsmax: number;
  /** The constant tables stored per tensor: quant_map (64 B) and, with double quant, nested_quant_map (1024 B). */
  constants: number;
  /** Sum of the above. The JSON state (about 100-170 bytes) is not included. */
  total: number;
}

/**
 * Bytes a tensor of `numel` parameters takes quantized to 4 bits: 0.5 byte per parameter, plus
 * 4 bytes per block of `blocksize` (1 byte per block and 4 bytes per 256 blocks with double
 * quantization), plus the small constant tables. At blocksize 64 that is 4.5 bits per parameter
 * without double quantization and about 4.127 with it.
 */
export function quantizedBytes(numel: number, options: QuantizedBytesOptions = {}): QuantizedBytes {
  if (!Number.isSafeInteger(numel) || numel < 0) throw new RangeError(`quantizedBytes: numel must be a non-negative integer, got ${numel}`);
  const blocksize = checkBlocksize(options.blocksize ?? 64, 'quantizedBytes');
  const blocks = Math.ceil(numel / blocksize);
  const packed = Math.ceil(numel / 2);
  const dq = options.doubleQuant ?? false;
  const absmax = dq ? blocks : blocks * 4;
  const nestedAbsmax = dq ? Math.ceil(blocks / NESTED_BLOCKSIZE) * 4 : 0;
  const constants = 16 * 4 + (dq ? 256 * 4 : 0);
  return { packed, absmax, nestedAbsmax, constants, total: packed + absmax + nestedAbsmax + constants };
}
