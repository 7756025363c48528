// WGSL for RMSNorm as Llama-family models compute it: one workgroup per row, f32 accumulation.
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { GRID_HELPERS, uniforms, type BindingKind, type KernelSpec } from '../../../core/kernel.js';
import { WGSL_BIT_CONVERSIONS, wgslRoundTo, wgslWorkgroupSum } from '../common/wgsl.js';

/**
 * y = w * round_x(x * rsqrt(mean(x^2) + eps)), where round_x rounds to x's storage dtype (the
 * reference casts the normalised value back to the input dtype before the weight multiply).
 * With `saveStats` the row's rstd goes to R for the backward pass.
 */
export function rmsNormForwardSpec(xType: DType, wType: DType | null, saveStats: boolean, lanes: number): KernelSpec {
  const bindings: BindingKind[] = ['read'];
  const decls = [`@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(xType)}>;`];
  if (wType) {
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read> W: array<${wgslStorageType(wType)}>;`);
    bindings.push('read');
  }
  decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> Y: array<f32>;`);
  bindings.push('read_write');
  if (saveStats) {
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> R: array<f32>;`);
    bindings.push('read_write');
  }
  const scaled = wType ? `f32(${wgslLoad(wType, 'W', 'i')}) * h` : 'h';
  return {
    name: 'rms_norm_fwd',
    variant: `${xType}:${wType ?? 'none'}:${saveStats ? 'stats' : 'nostats'}:${lanes}`,
    bindings,
    uniforms: uniforms('rows:u32', 'cols:u32', 'eps:f32'),
    wgsl: /* wgsl */ `
${decls.join('\n')}
struct Params { rows: u32, cols: u32, eps: f32, }
@group(0) @binding(${bindings.length}) var<uniform> u: Params;
${GRID_HELPERS}
${WGSL_BIT_CONVERSIONS}
${wgslWorkgroupSum(lanes)}
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = gid(wid, nwg, 0u, 1u);
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  var acc = 0.0;
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    let v = f32(${wgslLoad(xType, 'X', 'base + i')});
    acc += v * v;
  }
  let total = nb_wg_sum(acc, lid);
  let rstd = inverseSqrt(total / f32(u.cols) + u.eps);
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    let h = ${wgslRoundTo(xType, `f32(${wgslLoad(xType, 'X', 'base + i')}) * rstd`)};
    Y[base + i] = ${scaled};
  }
  ${saveStats ? 'if (lid == 0u) { R[row] = rstd; }' : ''}
}`,
  };
}

/** dx = rstd * (w*g) - x * rstd^3 / cols * sum(w*g*x), one workgroup per row. */
export function rmsNormBackwardSpec(xType: DType, wType: DType | null, lanes: number): KernelSpec {
  const bindings: BindingKind[] = ['read', 'read', 'read'];
  const decls = [
    `@group(0) @binding(0) var<storage, read> G: array<f32>;`,
    `@group(0) @binding(1) var<storage, read> X: array<${wgslStorageType(xType)}>;`,
    `@group(0) @binding(2) var<storage, read> R: array<f32>;`,
  ];
  if (wType) {
    decls.push(`@group(0) @binding(3) var<storage, read> W: array<${wgslStorageType(wType)}>;`);
    bindings.push('read');
  }
  decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> DX: array<f32>;`);
  bindings.push('read_write');
  const wg = wType ? `G[base + i] * f32(${wgslLoad(wType, 'W', 'i')})` : 'G[base + i]';
  return {
    name: 'rms_norm_bwd',
    variant: `${xType}:${wType ?? 'none'}:${lanes}`,
    bindings,
    uniforms: uniforms('rows:u32', 'cols:u32'),
    wgsl: /* wgsl */ `
${decls.join('\n')}
struct Params { rows: u32, cols: u32, }
@group(0) @binding(${bindings.length}) var<uniform> u: Params;
${GRID_HELPERS}
${wgslWorkgroupSum(lanes)}
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = gid(wid, nwg, 0u, 1u);
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  let rstd = R[row];
  var acc = 0.0;
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    acc += ${wg} * f32(${wgslLoad(xType, 'X', 'base + i')});
  }
  let dot = nb_wg_sum(acc, lid);
  let k = rstd * rstd * rstd * dot / f32(u.cols);
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    DX[base + i] = rstd * ${wg} - k * f32(${wgslLoad(xType, 'X', 'base + i')});
  }
}`,
  };
}
