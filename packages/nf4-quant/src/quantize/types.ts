// The quantized-tensor state shared by quantization, dequantization, serialization and the
// checkpoint tools: bitsandbytes' QuantState, as plain typed arrays.
import type { QuantType } from '../codes/four-bit-codes.js';

/** A weight's original dtype as bitsandbytes records it (torch's name without `torch.`). */
export type SourceDType = 'float32' | 'float16' | 'bfloat16';

/** 16-bit floats held as raw words, the way `@peft-ts/safetensors` hands out F16/BF16 data. */
export interface HalfWords {
  words: Uint16Array;
  dtype: 'f16' | 'bf16';
}

/** What `quantize` takes: float32 values, or f16/bf16 words. */
export type QuantizeInput = Float32Array | HalfWords;

interface Quantized4bitBase {
  quantType: QuantType;
  /** Elements per absmax block (64 unless chosen otherwise). */
  blocksize: number;
  /** The original tensor's shape; the data is flattened row-major. */
  shape: number[];
  /** The original tensor's dtype. */
  dtype: SourceDType;
  /** Two 4-bit indices per byte, element 2k in the high nibble: ceil(n / 2) bytes. */
  packed: Uint8Array;
}

/** A 4-bit tensor with one float32 absmax per block. */
export interface PlainQuantized4bit extends Quantized4bitBase {
  doubleQuant: false;
  /** float32 max |x| of each block: ceil(n / blocksize) values. */
  absmax: Float32Array;
}

/**
 * A 4-bit tensor whose absmax values are themselves quantized to 8 bits (double quantization):
 * `absmax[b] = f32(DYNAMIC_MAP_SIGNED[qabsmax[b]] * nestedAbsmax[b >> 8]) + offset`.
 */
export interface DoubleQuantized4bit extends Quantized4bitBase {
  doubleQuant: true;
  /** 8-bit index into the signed dynamic map per 4-bit block. */
  qabsmax: Uint8Array;
  /** float32 max |absmax - offset| per group of `nestedBlocksize` blocks. */
  nestedAbsmax: Float32Array;
  /** float32 mean of the absmax values, subtracted before the 8-bit quantization. */
  offset: number;
  /** Blocks per nested group; bitsandbytes always uses 256. */
  nestedBlocksize: number;
}

export type Quantized4bit = PlainQuantized4bit | DoubleQuantized4bit;
