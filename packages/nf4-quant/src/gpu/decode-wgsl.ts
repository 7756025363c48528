// WGSL shared by the kernels that read 4-bit weights: the block absmax (stored, or rebuilt from
// the double-quantized state) and the decoded value of one 4-bit index.
import { TABLE_DYNAMIC } from './codes.js';

/**
 * `fn q4_absmax(b: u32) -> u32`: the f32 bits of block b's absmax. Plain: `S[b]`. Double quant:
 * `f32(map[qabsmax[b]] * nested[b >> 8]) + offset`, the product rounded exactly by `fb_mul`
 * (so no fused multiply-add can change it) and the sum by the float32 add. Needs bindings S
 * (absmax bits, or qabsmax bytes four to a word), NST (nested absmax bits, double quant only),
 * T (code tables) and the uniform `u.offset` (the offset's f32 bits).
 */
export function absmaxWgsl(doubleQuant: boolean): string {
  if (!doubleQuant) return /* wgsl */ `
fn q4_absmax(b: u32) -> u32 {
  return S[b];
}`;
  return /* wgsl */ `
fn q4_absmax(b: u32) -> u32 {
  let q = (S[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
  let scaled = fb_mul(T[${TABLE_DYNAMIC}u + q], NST[b >> 8u]);
  return bitcast<u32>(bitcast<f32>(scaled) + bitcast<f32>(u.offset));
}`;
}

/**
 * `fn q4_value(code: u32, am: u32) -> u32`: f32 bits of `code * absmax`, correctly rounded. The
 * float multiply is exact IEEE whenever the product is a normal number, which an absmax of at
 * least 2^-100 guarantees (|code| >= 2^-8 or 0); other absmax values (tiny, infinite) take the
 * integer path so flushed subnormals or NaN shortcuts on some devices cannot change the bits.
 */
export const Q4_VALUE_WGSL = /* wgsl */ `
fn q4_value(code: u32, am: u32) -> u32 {
  let e = (am >> 23u) & 0xffu;
  if (e >= 27u && e < 255u) { return bitcast<u32>(bitcast<f32>(code) * bitcast<f32>(am)); }
  return fb_mul(code, am);
}`;

/** WGSL shift that puts element `m` (0..7) of a packed u32 word at the bottom: bytes little-endian, even element in the high nibble. */
export function nibbleShift(m: number): number {
  return (m >> 1) * 8 + (m % 2 === 0 ? 4 : 0);
}
