// WGSL for rotary position embeddings in the rotate_half convention: one invocation per element,
// the cos/sin rows gathered by each token's position id.
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { GRID_HELPERS, uniforms, type KernelSpec } from '../../../core/kernel.js';

/** 'bthd': x is [B, T, H, D] (as a q/k projection comes out); 'bhtd': [B, H, T, D]. */
export type RotaryLayout = 'bthd' | 'bhtd';

/**
 * Forward, for a < R/2 and b = a + R/2: y_a = x_a c_a - x_b s_a, y_b = x_b c_b + x_a s_b; dims
 * from R on pass through. `transpose` applies the transposed rotation (the gradient):
 * dx_a = g_a c_a + g_b s_b, dx_b = g_b c_b - g_a s_a. Positions outside the table give NaN.
 */
export function rotarySpec(xType: DType, tableType: DType, layout: RotaryLayout, transpose: boolean): KernelSpec {
  const ld = (buf: string, i: string) => `f32(${wgslLoad(buf === 'X' ? xType : tableType, buf, i)})`;
  const decode =
    layout === 'bthd'
      ? 'let bt = row / u.h; let b = bt / u.t; let t = bt % u.t;'
      : 'let t = row % u.t; let b = row / (u.h * u.t);';
  const lo = transpose ? `xa * ${ld('C', 'tab + d')} + xb * ${ld('S', 'tab + d + half')}` : `xa * ${ld('C', 'tab + d')} - xb * ${ld('S', 'tab + d')}`;
  const hi = transpose ? `xa * ${ld('C', 'tab + d')} - xb * ${ld('S', 'tab + d - half')}` : `xa * ${ld('C', 'tab + d')} + xb * ${ld('S', 'tab + d')}`;
  return {
    name: 'rotary',
    variant: `${xType}:${tableType}:${layout}:${transpose ? 'bwd' : 'fwd'}`,
    bindings: ['read', 'read', 'read', 'read', 'read_write'],
    uniforms: uniforms('n:u32', 'd:u32', 'r:u32', 'h:u32', 't:u32', 'pos_b:u32', 'npos:u32', 'nan_bits:u32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(xType)}>;
@group(0) @binding(1) var<storage, read> P: array<i32>;
@group(0) @binding(2) var<storage, read> C: array<${wgslStorageType(tableType)}>;
@group(0) @binding(3) var<storage, read> S: array<${wgslStorageType(tableType)}>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
struct Params { n: u32, d: u32, r: u32, h: u32, t: u32, pos_b: u32, npos: u32, nan_bits: u32, }
@group(0) @binding(5) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let d = i % u.d;
  let xa = ${ld('X', 'i')};
  if (d >= u.r) { O[i] = xa; return; }
  let row = i / u.d;
  ${decode}
  let p = P[b * u.pos_b + t];
  if (p < 0 || u32(p) >= u.npos) { O[i] = bitcast<f32>(u.nan_bits); return; }
  let tab = u32(p) * u.r;
  let half = u.r / 2u;
  if (d < half) {
    let xb = ${ld('X', 'i + half')};
    O[i] = ${lo};
  } else {
    let xb = ${ld('X', 'i - half')};
    O[i] = ${hi};
  }
}`,
  };
}
