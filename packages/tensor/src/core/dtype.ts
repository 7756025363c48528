// Tensor element types, their storage sizes, and the WGSL that loads and stores them.
import { DTypeError } from '@peft-ts/errors';

/** f16 and bf16 are 16-bit storage, widened to f32 in the shader; u8 is packed four to a word. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32' | 'u8';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4, u8: 1 };

export const FLOAT_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

export function isFloat(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16';
}

export function assertDType(op: string, dtype: DType, allowed: readonly DType[]): void {
  if (!allowed.includes(dtype)) throw new DTypeError({ op, expected: allowed.join(' | '), got: dtype });
}

/** The WGSL array element type a buffer of this dtype is bound as. Sub-word types bind as u32 words. */
export function wgslStorageType(dtype: DType): string {
  switch (dtype) {
    case 'f32':
      return 'f32';
    case 'i32':
      return 'i32';
    default:
      return 'u32';
  }
}

/** The WGSL type a value of this dtype has once loaded (16-bit floats widen to f32). */
export function wgslValueType(dtype: DType): string {
  switch (dtype) {
    case 'i32':
      return 'i32';
    case 'u32':
    case 'u8':
      return 'u32';
    default:
      return 'f32';
  }
}

/**
 * WGSL expression that loads element `index` (a u32 expression) of buffer `buf` as its value type.
 * 16-bit values sit two to a u32 word, low half first (little-endian, as on the host).
 */
export function wgslLoad(dtype: DType, buf: string, index: string): string {
  switch (dtype) {
    case 'f32':
    case 'i32':
    case 'u32':
      return `${buf}[${index}]`;
    case 'f16':
      return `unpack2x16float(${buf}[(${index}) >> 1u])[(${index}) & 1u]`;
    case 'bf16':
      return `bitcast<f32>(((${buf}[(${index}) >> 1u] >> (((${index}) & 1u) * 16u)) & 0xffffu) << 16u)`;
    case 'u8':
      return `((${buf}[(${index}) >> 2u] >> (((${index}) & 3u) * 8u)) & 0xffu)`;
  }
}

/** WGSL helper functions that round an f32 to f16/bf16 bits (round-to-nearest-even, NaN kept). */
export const WGSL_PACK_HELPERS = /* wgsl */ `
fn pk_bf16_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return (u >> 16u) | 0x40u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}
fn pk_f16_bits(x: f32) -> u32 {
  return pack2x16float(vec2f(x, 0.0)) & 0xffffu;
}
`;

/** Bytes a tensor of `numel` elements of `dtype` occupies, rounded up to whole 4-byte words. */
export function storageBytes(dtype: DType, numel: number): number {
  return Math.ceil((numel * DTYPE_BYTES[dtype]) / 4) * 4;
}
