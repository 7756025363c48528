// Turning what `quantize` accepts (float32 values or f16/bf16 words) into float32 values,
// exactly: bitsandbytes widens 16-bit inputs to float32 before scaling them.
import { DTypeError } from '@peft-ts/errors';
import { bf16ToF32, f16ToF32 } from '@peft-ts/safetensors';
import type { QuantizeInput, SourceDType } from './types.js';

export interface WidenedInput {
  values: Float32Array;
  dtype: SourceDType;
}

export function widenInput(input: QuantizeInput, op: string): WidenedInput {
  if (input instanceof Float32Array) return { values: input, dtype: 'float32' };
  if (typeof input === 'object' && input !== null && 'words' in input && input.words instanceof Uint16Array) {
    if (input.dtype === 'f16') return { values: f16ToF32(input.words), dtype: 'float16' };
    if (input.dtype === 'bf16') return { values: bf16ToF32(input.words), dtype: 'bfloat16' };
    throw new DTypeError({ op, expected: "words with dtype 'f16' or 'bf16'", got: String((input as { dtype: unknown }).dtype) });
  }
  throw new DTypeError({
    op,
    expected: "a Float32Array or { words: Uint16Array, dtype: 'f16' | 'bf16' }",
    got: describeInput(input),
  });
}

function describeInput(input: unknown): string {
  if (input === null) return 'null';
  if (ArrayBuffer.isView(input)) return input.constructor.name;
  if (typeof input === 'object') return `an object with keys ${Object.keys(input).join(', ') || '(none)'}`;
  return typeof input;
}
