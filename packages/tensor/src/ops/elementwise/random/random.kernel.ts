// WGSL for the counter-based Philox-4x32-10 generator: raw u32 words, uniform [0, 1) floats,
// normal floats (Box-Muller), and dropout masks regenerated from the same counters.
import { GRID_HELPERS, type KernelSpec, type UniformField } from '../../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';

/**
 * philox(counter, key): 10 rounds of Philox-4x32 (Salmon et al., SC'11) with the standard
 * multipliers and Weyl key increments. WGSL has no 32x32->64 multiply, so the high word is built
 * from 16-bit halves. `block(t)` is the 128-bit counter (lo, hi, 0, 0) of the draw's block
 * (u.blo, u.bhi) + t, with the carry into the high word.
 */
export const PHILOX_WGSL = /* wgsl */ `
fn mulhi32(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}
fn philox(counter: vec4u, k: vec2u) -> vec4u {
  var x = counter;
  var key = k;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { key += vec2u(0x9E3779B9u, 0xBB67AE85u); }
    let hi0 = mulhi32(0xD2511F53u, x.x);
    let lo0 = 0xD2511F53u * x.x;
    let hi1 = mulhi32(0xCD9E8D57u, x.z);
    let lo1 = 0xCD9E8D57u * x.z;
    x = vec4u(hi1 ^ x.y ^ key.x, lo1, hi0 ^ x.w ^ key.y, lo0);
  }
  return x;
}
fn block(t: u32) -> vec4u {
  let lo = u.blo + t;
  return vec4u(lo, u.bhi + select(0u, 1u, lo < u.blo), 0u, 0u);
}
// The top 24 bits as a float in [0, 1): exact, and never 1.
fn unit(x: u32) -> f32 { return f32(x >> 8u) * 0x1p-24f; }
`;

export type RandomKind = 'bits' | 'uniform' | 'normal';

const RNG_UNIFORMS: UniformField[] = [
  { name: 'n', type: 'u32' },
  { name: 'blo', type: 'u32' },
  { name: 'bhi', type: 'u32' },
  { name: 'k0', type: 'u32' },
  { name: 'k1', type: 'u32' },
];

const structOf = (fields: readonly UniformField[]) => `struct Params { ${fields.map((f) => `${f.name}: ${f.type},`).join(' ')} }`;

/**
 * Invocation t computes block t and writes elements 4t..4t+3 (those below n). normal: Box-Muller
 * on the word pairs (0, 1) and (2, 3), with u1 in (0, 1] and the angle in [-pi, pi), the range
 * where sin/cos are accurate on every device.
 */
export function randomSpec(kind: RandomKind): KernelSpec {
  const value =
    kind === 'bits'
      ? 'let v = w;'
      : kind === 'uniform'
        ? 'let v = vec4f(unit(w.x), unit(w.y), unit(w.z), unit(w.w));'
        : `let r01 = sqrt(-2.0 * log(f32((w.x >> 8u) + 1u) * 0x1p-24f));
  let a01 = 6.2831855 * unit(w.y) - 3.1415927;
  let r23 = sqrt(-2.0 * log(f32((w.z >> 8u) + 1u) * 0x1p-24f));
  let a23 = 6.2831855 * unit(w.w) - 3.1415927;
  let v = vec4f(r01 * cos(a01), r01 * sin(a01), r23 * cos(a23), r23 * sin(a23));`;
  return {
    name: 'philox',
    variant: kind,
    bindings: ['read_write'],
    uniforms: RNG_UNIFORMS,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> O: array<${kind === 'bits' ? 'u32' : 'f32'}>;
${structOf(RNG_UNIFORMS)}
@group(0) @binding(1) var<uniform> u: Params;
${GRID_HELPERS}
${PHILOX_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = gid(wid, nwg, lid, 64u);
  let j = t * 4u;
  if (j >= u.n) { return; }
  let w = philox(block(t), vec2u(u.k0, u.k1));
  ${value}
  for (var l = 0u; l < 4u; l++) {
    if (j + l < u.n) { O[j + l] = v[l]; }
  }
}`,
  };
}

const DROPOUT_UNIFORMS: UniformField[] = [...RNG_UNIFORMS, { name: 'thr', type: 'u32' }, { name: 'scale', type: 'f32' }];

/**
 * Inverted dropout of X (dtype): element j of block t is kept when its word's top 24 bits are >=
 * thr (probability 1 - thr / 2^24) and scaled by `scale`; dropped elements are 0. The backward
 * pass runs the same kernel on the output gradient with the same counters, so the mask is never
 * stored.
 */
export function dropoutSpec(dtype: DType): KernelSpec {
  return {
    name: 'dropout',
    variant: dtype,
    bindings: ['read', 'read_write'],
    uniforms: DROPOUT_UNIFORMS,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
${structOf(DROPOUT_UNIFORMS)}
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
${PHILOX_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = gid(wid, nwg, lid, 64u);
  let j = t * 4u;
  if (j >= u.n) { return; }
  let w = philox(block(t), vec2u(u.k0, u.k1));
  for (var l = 0u; l < 4u; l++) {
    let i = j + l;
    if (i < u.n) {
      let x = f32(${wgslLoad(dtype, 'X', 'i')});
      O[i] = select(0.0, x * u.scale, (w[l] >> 8u) >= u.thr);
    }
  }
}`,
  };
}
