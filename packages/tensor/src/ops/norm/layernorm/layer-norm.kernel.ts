// WGSL for LayerNorm over the last dim (biased variance, two passes for accuracy): one
// workgroup per row, f32 accumulation.
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { GRID_HELPERS, uniforms, type BindingKind, type KernelSpec } from '../../../core/kernel.js';
import { wgslWorkgroupSum } from '../common/wgsl.js';

interface Decls {
  bindings: BindingKind[];
  lines: string[];
}

function declare(d: Decls, kind: BindingKind, name: string, type: string): void {
  d.lines.push(`@group(0) @binding(${d.bindings.length}) var<storage, ${kind}> ${name}: array<${type}>;`);
  d.bindings.push(kind);
}

/** y = (x - mean) * rstd * w + b; with `saveStats`, S[2*row] = mean and S[2*row+1] = rstd. */
export function layerNormForwardSpec(xType: DType, wType: DType | null, bType: DType | null, saveStats: boolean, lanes: number): KernelSpec {
  const d: Decls = { bindings: [], lines: [] };
  declare(d, 'read', 'X', wgslStorageType(xType));
  if (wType) declare(d, 'read', 'W', wgslStorageType(wType));
  if (bType) declare(d, 'read', 'B', wgslStorageType(bType));
  declare(d, 'read_write', 'Y', 'f32');
  if (saveStats) declare(d, 'read_write', 'S', 'f32');
  let y = 'h';
  if (wType) y = `${y} * f32(${wgslLoad(wType, 'W', 'i')})`;
  if (bType) y = `${y} + f32(${wgslLoad(bType, 'B', 'i')})`;
  return {
    name: 'layer_norm_fwd',
    variant: `${xType}:${wType ?? 'none'}:${bType ?? 'none'}:${saveStats ? 'stats' : 'nostats'}:${lanes}`,
    bindings: d.bindings,
    uniforms: uniforms('rows:u32', 'cols:u32', 'eps:f32'),
    wgsl: /* wgsl */ `
${d.lines.join('\n')}
struct Params { rows: u32, cols: u32, eps: f32, }
@group(0) @binding(${d.bindings.length}) var<uniform> u: Params;
${GRID_HELPERS}
${wgslWorkgroupSum(lanes)}
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = gid(wid, nwg, 0u, 1u);
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  var acc = 0.0;
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    acc += f32(${wgslLoad(xType, 'X', 'base + i')});
  }
  let mean = nb_wg_sum(acc, lid) / f32(u.cols);
  var acc2 = 0.0;
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    let c = f32(${wgslLoad(xType, 'X', 'base + i')}) - mean;
    acc2 += c * c;
  }
  let rstd = inverseSqrt(nb_wg_sum(acc2, lid) / f32(u.cols) + u.eps);
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    let h = (f32(${wgslLoad(xType, 'X', 'base + i')}) - mean) * rstd;
    Y[base + i] = ${y};
  }
  ${saveStats ? 'if (lid == 0u) { S[2u * row] = mean; S[2u * row + 1u] = rstd; }' : ''}
}`,
  };
}

/** dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), dy = g * w, one workgroup per row. */
export function layerNormBackwardSpec(xType: DType, wType: DType | null, lanes: number): KernelSpec {
  const d: Decls = { bindings: [], lines: [] };
  declare(d, 'read', 'G', 'f32');
  declare(d, 'read', 'X', wgslStorageType(xType));
  declare(d, 'read', 'S', 'f32');
  if (wType) declare(d, 'read', 'W', wgslStorageType(wType));
  declare(d, 'read_write', 'DX', 'f32');
  const dy = wType ? `G[base + i] * f32(${wgslLoad(wType, 'W', 'i')})` : 'G[base + i]';
  const xhat = `(f32(${wgslLoad(xType, 'X', 'base + i')}) - mean) * rstd`;
  return {
    name: 'layer_norm_bwd',
    variant: `${xType}:${wType ?? 'none'}:${lanes}`,
    bindings: d.bindings,
    uniforms: uniforms('rows:u32', 'cols:u32'),
    wgsl: /* wgsl */ `
${d.lines.join('\n')}
struct Params { rows: u32, cols: u32, }
@group(0) @binding(${d.bindings.length}) var<uniform> u: Params;
${GRID_HELPERS}
${wgslWorkgroupSum(lanes)}
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = gid(wid, nwg, 0u, 1u);
  if (row >= u.rows) { return; }
  let base = row * u.cols;
  let mean = S[2u * row];
  let rstd = S[2u * row + 1u];
  var a1 = 0.0;
  var a2 = 0.0;
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    let dy = ${dy};
    a1 += dy;
    a2 += dy * ${xhat};
  }
  let m1 = nb_wg_sum(a1, lid) / f32(u.cols);
  let m2 = nb_wg_sum(a2, lid) / f32(u.cols);
  for (var i = lid; i < u.cols; i += ${lanes}u) {
    DX[base + i] = rstd * (${dy} - m1 - ${xhat} * m2);
  }
}`,
  };
}
