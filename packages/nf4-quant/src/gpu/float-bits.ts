// WGSL helpers that compute on float32 bit patterns with integer arithmetic only, so the GPU
// reproduces the CPU path bit for bit on every device (no flushed subnormals, no fused ops).
import type { KernelSpec } from '@peft-ts/tensor';

/**
 * `fb_*` functions on f32 bit patterns held in u32:
 * - `fb_f16_widen(h)`: an f16 word to f32 bits, exactly (f16 subnormals become f32 normals).
 * - `fb_recip(a)`: the correctly rounded f32 reciprocal of a positive value (0 -> Inf, Inf -> 0),
 *   by 24-step long division of the significands; this is `Math.fround(1 / a)`.
 * - `fb_mul(x, y)`: the correctly rounded f32 product (`Math.fround(x * y)`), subnormal results
 *   included, from a 48-bit integer product of the significands.
 * - `fb_key(b)`: an unsigned key ordered like the float values (for comparisons without NaN).
 * - `fb_to_f16(b)`, `fb_to_bf16(b)`: round to nearest even, as @peft-ts/safetensors narrows.
 */
export const WGSL_FLOAT_BITS = /* wgsl */ `
fn fb_f16_widen(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  let s = countLeadingZeros(m) - 21u;
  return sign | ((113u - s) << 23u) | (((m << s) & 0x3ffu) << 13u);
}

// |value| = M * 2^(E - 150) with M in [2^23, 2^24), for finite nonzero magnitude bits.
fn fb_split(a: u32) -> vec2<i32> {
  let e = i32(a >> 23u);
  let m = a & 0x7fffffu;
  if (e != 0) { return vec2<i32>(i32(m | 0x800000u), e); }
  let s = countLeadingZeros(m) - 8u;
  return vec2<i32>(i32(m << s), 1 - i32(s));
}

fn fb_recip(a: u32) -> u32 {
  if (a == 0u) { return 0x7f800000u; }
  if (a >= 0x7f800000u) { return 0u; }
  let d = fb_split(a);
  let m = u32(d.x);
  let e = d.y;
  if (m == 0x800000u) {
    let pe = 254 - e;
    if (pe >= 255) { return 0x7f800000u; }
    if (pe >= 1) { return u32(pe) << 23u; }
    return 1u << u32(276 - e);
  }
  // q = floor(2^47 / m) in [2^23, 2^24), r the remainder.
  var r = 0x800000u;
  var q = 0u;
  for (var i = 0u; i < 24u; i++) {
    r = r << 1u;
    q = q << 1u;
    if (r >= m) {
      r = r - m;
      q = q | 1u;
    }
  }
  let be = 253 - e;
  if (be >= 255) { return 0x7f800000u; }
  if (be >= 1) {
    let up = 2u * r > m || (2u * r == m && (q & 1u) == 1u);
    return (u32(be) << 23u) + q + u32(up) - 0x800000u;
  }
  let shift = u32(1 - be);
  let q2 = q >> shift;
  let rem = q & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  let up = rem > half || (rem == half && (r != 0u || (q2 & 1u) == 1u));
  return q2 + u32(up);
}

// (hi * 2^24 + lo) >> drop, rounded to nearest even; hi, lo < 2^24, 23 <= drop <= 48.
fn fb_round48(hi: u32, lo: u32, drop: u32) -> u32 {
  var q = 0u;
  var above = false;
  var tie = false;
  if (drop == 23u) {
    q = (hi << 1u) | (lo >> 23u);
    let rem = lo & 0x7fffffu;
    above = rem > 0x400000u;
    tie = rem == 0x400000u;
  } else if (drop == 24u) {
    q = hi;
    above = lo > 0x800000u;
    tie = lo == 0x800000u;
  } else {
    let d = drop - 24u;
    q = hi >> d;
    let remHi = hi & ((1u << d) - 1u);
    let half = 1u << (d - 1u);
    above = remHi > half || (remHi == half && lo != 0u);
    tie = remHi == half && lo == 0u;
  }
  if (above || (tie && (q & 1u) == 1u)) { q = q + 1u; }
  return q;
}

fn fb_mul(x: u32, y: u32) -> u32 {
  let sign = (x ^ y) & 0x80000000u;
  let ax = x & 0x7fffffffu;
  let ay = y & 0x7fffffffu;
  if (ax > 0x7f800000u || ay > 0x7f800000u) { return 0x7fc00000u; }
  if (ax == 0x7f800000u || ay == 0x7f800000u) {
    if (ax == 0u || ay == 0u) { return 0x7fc00000u; }
    return sign | 0x7f800000u;
  }
  if (ax == 0u || ay == 0u) { return sign; }
  let dx = fb_split(ax);
  let dy = fb_split(ay);
  let a = u32(dx.x);
  let b = u32(dy.x);
  let a1 = a >> 12u;
  let a0 = a & 0xfffu;
  let b1 = b >> 12u;
  let b0 = b & 0xfffu;
  let mid = a1 * b0 + a0 * b1;
  let t = a0 * b0 + ((mid & 0xfffu) << 12u);
  let lo = t & 0xffffffu;
  let hi = a1 * b1 + (mid >> 12u) + (t >> 24u);
  let top = select(46, 47, hi >= 0x800000u);
  let be = top + dx.y + dy.y - 173;
  if (be >= 255) { return sign | 0x7f800000u; }
  if (be >= 1) {
    return sign | ((u32(be) << 23u) + fb_round48(hi, lo, u32(top - 23)) - 0x800000u);
  }
  let drop = 151 - dx.y - dy.y;
  if (drop > 48) { return sign; }
  return sign | fb_round48(hi, lo, u32(drop));
}

fn fb_key(b: u32) -> u32 {
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn fb_to_f16(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let e = i32((b >> 23u) & 0xffu);
  let m = b & 0x7fffffu;
  if (e == 255) { return select(sign | 0x7e00u | (m >> 13u), sign | 0x7c00u, m == 0u); }
  let he = e - 112;
  if (he >= 31) { return sign | 0x7c00u; }
  if (he <= 0) {
    if (he < -10) { return sign; }
    let sig = m | 0x800000u;
    let shift = u32(14 - he);
    var q = sig >> shift;
    let rest = sig & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (q & 1u) == 1u)) { q = q + 1u; }
    return sign | q;
  }
  var q = (u32(he) << 10u) | (m >> 13u);
  let rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (q & 1u) == 1u)) { q = q + 1u; }
  return sign | q;
}

fn fb_to_bf16(b: u32) -> u32 {
  if ((b & 0x7fffffffu) > 0x7f800000u) { return ((b >> 16u) | 0x40u) & 0xffffu; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
`;

/** The helpers `floatBitsSpec` exposes, one per kernel variant. */
export type FloatBitsOp = 'recip' | 'mul' | 'f16-widen' | 'to-f16' | 'to-bf16';

const OP_EXPR: Record<FloatBitsOp, string> = {
  recip: 'fb_recip(X[i])',
  mul: 'fb_mul(X[i], Y[i])',
  'f16-widen': 'fb_f16_widen(X[i] & 0xffffu)',
  'to-f16': 'fb_to_f16(X[i])',
  'to-bf16': 'fb_to_bf16(X[i])',
};

/**
 * One helper applied elementwise to u32 arrays (`out[i] = op(x[i], y[i])`), so the helpers can
 * be checked against JavaScript's float arithmetic directly.
 */
export function floatBitsSpec(op: FloatBitsOp): KernelSpec {
  return {
    name: 'nf4_float_bits',
    variant: op,
    bindings: ['read', 'read', 'read_write'],
    uniforms: [{ name: 'n', type: 'u32' }],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<u32>;
@group(0) @binding(1) var<storage, read> Y: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<u32>;
struct Params { n: u32, }
@group(0) @binding(3) var<uniform> u: Params;
${WGSL_FLOAT_BITS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= u.n) { return; }
  O[i] = ${OP_EXPR[op]};
}`,
  };
}
