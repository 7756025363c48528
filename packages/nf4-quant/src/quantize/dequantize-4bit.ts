// Dequantization of 4-bit tensors: code value times block absmax in float32, optionally
// rounded to f16/bf16 words, as bitsandbytes' kernel writes half-precision outputs.
import { ShapeMismatchError } from '@peft-ts/errors';
import { f32ToBf16, f32ToF16 } from '@peft-ts/safetensors';
import { DYNAMIC_MAP_SIGNED } from '../codes/dynamic-map.js';
import { codeTable } from '../codes/four-bit-codes.js';
import type { Quantized4bit } from './types.js';

export interface DequantizeOptions {
  /** Output precision: 'f32' (default) or 'f16'/'bf16' words rounded to nearest even. */
  to?: 'f32' | 'f16' | 'bf16';
}

/** Number of elements of a quantized tensor (product of its shape). */
export function numel(q: Quantized4bit): number {
  return q.shape.reduce((a, b) => a * b, 1);
}

/**
 * The float32 absmax of every block: stored as is, or rebuilt from the nested state as
 * `f32(map[qabsmax[b]] * nestedAbsmax[b >> 8]) + offset` (float32 multiply, then float32 add).
 */
export function blockAbsmax(q: Quantized4bit): Float32Array {
  const blocks = Math.ceil(numel(q) / q.blocksize);
  if (!q.doubleQuant) {
    if (q.absmax.length !== blocks) {
      throw new ShapeMismatchError({ op: 'dequantize absmax', expected: [blocks], got: [q.absmax.length] });
    }
    return q.absmax;
  }
  if (q.qabsmax.length !== blocks) {
    throw new ShapeMismatchError({ op: 'dequantize qabsmax', expected: [blocks], got: [q.qabsmax.length] });
  }
  const groups = Math.ceil(blocks / q.nestedBlocksize);
  if (q.nestedAbsmax.length !== groups) {
    throw new ShapeMismatchError({ op: 'dequantize nested_absmax', expected: [groups], got: [q.nestedAbsmax.length] });
  }
  const out = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const scaled = Math.fround(
      (DYNAMIC_MAP_SIGNED[q.qabsmax[b] ?? 0] ?? 0) * (q.nestedAbsmax[Math.floor(b / q.nestedBlocksize)] ?? 0),
    );
    out[b] = scaled + q.offset;
  }
  return out;
}

export function dequantize(q: Quantized4bit, options?: { to?: 'f32' }): Float32Array;
export function dequantize(q: Quantized4bit, options: { to: 'f16' | 'bf16' }): Uint16Array;
export function dequantize(q: Quantized4bit, options?: DequantizeOptions): Float32Array | Uint16Array;
/** `out[i] = round_to(dtype, f32(code[index_i] * absmax[i / blocksize]))`, flattened row-major. */
export function dequantize(q: Quantized4bit, options: DequantizeOptions = {}): Float32Array | Uint16Array {
  const n = numel(q);
  if (q.packed.length !== (n + 1) >> 1) {
    throw new ShapeMismatchError({ op: 'dequantize packed', expected: [(n + 1) >> 1], got: [q.packed.length] });
  }
  const absmax = blockAbsmax(q);
  const code = codeTable(q.quantType);
  const out = new Float32Array(n);
  const bs = q.blocksize;
  for (let b = 0, i = 0; i < n; b++) {
    const scale = absmax[b] ?? 0;
    const end = Math.min(i + bs, n);
    for (; i < end; i++) {
      const byte = q.packed[i >> 1] ?? 0;
      out[i] = (code[(i & 1) === 0 ? byte >> 4 : byte & 15] ?? 0) * scale;
    }
  }
  if (options.to === 'f16') return f32ToF16(out);
  if (options.to === 'bf16') return f32ToBf16(out);
  return out;
}
