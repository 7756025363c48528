// WGSL snippets shared by the norm family: exact 16-bit float conversions done on raw bits (so
// they match the host conversions bit for bit) and a deterministic workgroup tree sum.
import type { DType } from '../../../core/dtype.js';

/**
 * f32 bits -> f16 bits (round-to-nearest-even, overflow to Inf, subnormals kept, NaN kept quiet),
 * f16 bits -> f32 bits (exact), and f32 bits -> bf16 bits (round-to-nearest-even). Integer-only,
 * because WGSL leaves the rounding and range of pack2x16float to the implementation.
 */
export const WGSL_BIT_CONVERSIONS = /* wgsl */ `
fn nb_f32_to_f16(u: u32) -> u32 {
  let sign = (u >> 16u) & 0x8000u;
  let ex = i32((u >> 23u) & 0xffu);
  let mant = u & 0x7fffffu;
  if (ex == 255) {
    if (mant != 0u) { return sign | 0x7e00u; }
    return sign | 0x7c00u;
  }
  let e = ex - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rest = m & ((1u << shift) - 1u);
    var r = m >> shift;
    if (rest > half || (rest == half && (r & 1u) == 1u)) { r += 1u; }
    return sign | r;
  }
  var r = (u32(e) << 10u) | (mant >> 13u);
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (r & 1u) == 1u)) { r += 1u; }
  return sign | r;
}
fn nb_f16_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let ex = (h >> 10u) & 0x1fu;
  let mant = h & 0x3ffu;
  if (ex == 0x1fu) { return sign | 0x7f800000u | (mant << 13u); }
  if (ex == 0u) {
    if (mant == 0u) { return sign; }
    let p = firstLeadingBit(mant);
    let s = 10u - p;
    return sign | ((103u + p) << 23u) | (((mant << s) & 0x3ffu) << 13u);
  }
  return sign | ((ex + 112u) << 23u) | (mant << 13u);
}
fn nb_f32_to_bf16(u: u32) -> u32 {
  if ((u & 0x7fffffffu) > 0x7f800000u) { return ((u >> 16u) | 0x40u) & 0xffffu; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}
`;

/**
 * WGSL expression rounding the f32 value `v` to `dtype` and widening it back (identity for f32).
 * Needs WGSL_BIT_CONVERSIONS.
 */
export function wgslRoundTo(dtype: DType, v: string): string {
  switch (dtype) {
    case 'f16':
      return `bitcast<f32>(nb_f16_to_f32(nb_f32_to_f16(bitcast<u32>(${v}))))`;
    case 'bf16':
      return `bitcast<f32>(nb_f32_to_bf16(bitcast<u32>(${v})) << 16u)`;
    default:
      return v;
  }
}

/**
 * A workgroup-wide sum of one f32 per invocation over `size` lanes (a power of two), as a fixed
 * tree so results do not depend on scheduling. Call from uniform control flow.
 */
export function wgslWorkgroupSum(size: number): string {
  return /* wgsl */ `
var<workgroup> nb_red: array<f32, ${size}>;
fn nb_wg_sum(v: f32, lid: u32) -> f32 {
  nb_red[lid] = v;
  workgroupBarrier();
  for (var s = ${size / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { nb_red[lid] = nb_red[lid] + nb_red[lid + s]; }
    workgroupBarrier();
  }
  let total = nb_red[0];
  workgroupBarrier();
  return total;
}
`;
}

/** Lanes per row workgroup: narrow rows do not need 256 mostly idle lanes. */
export function rowWorkgroupSize(cols: number): number {
  return cols <= 256 ? 64 : 256;
}
