// WGSL for the per-column gradient sums of a norm's weight and bias: each invocation owns one
// column and one block of rows, so partial sums are deterministic (no float atomics).
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import type { BindingKind, KernelSpec } from '../../../core/kernel.js';
import { uniforms } from '../../../core/kernel.js';

export type NormKind = 'rms' | 'ln';

export const WGRAD_LANES = 64;

/**
 * Partials over one row block: weight gets sum(g * xhat), bias sum(g). `xhat` is x * rstd for
 * 'rms' (stats = rstd per row) and (x - mean) * rstd for 'ln' (stats = [mean, rstd] per row).
 */
export function weightGradSpec(kind: NormKind, xType: DType, needW: boolean, needB: boolean): KernelSpec {
  const bindings: BindingKind[] = ['read', 'read', 'read'];
  const decls = [
    `@group(0) @binding(0) var<storage, read> G: array<f32>;`,
    `@group(0) @binding(1) var<storage, read> X: array<${wgslStorageType(xType)}>;`,
    `@group(0) @binding(2) var<storage, read> S: array<f32>;`,
  ];
  if (needW) {
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> PW: array<f32>;`);
    bindings.push('read_write');
  }
  if (needB) {
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> PB: array<f32>;`);
    bindings.push('read_write');
  }
  const fields = uniforms('rows:u32', 'cols:u32', 'block:u32');
  const xhat = kind === 'rms' ? `f32(${wgslLoad(xType, 'X', 'k')}) * S[r]` : `(f32(${wgslLoad(xType, 'X', 'k')}) - S[2u * r]) * S[2u * r + 1u]`;
  return {
    name: 'norm_wgrad',
    variant: `${kind}:${xType}:${needW ? 'w' : ''}${needB ? 'b' : ''}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${decls.join('\n')}
struct Params { rows: u32, cols: u32, block: u32, }
@group(0) @binding(${bindings.length}) var<uniform> u: Params;
@compute @workgroup_size(${WGRAD_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let j = wid.x * ${WGRAD_LANES}u + lid;
  if (j >= u.cols) { return; }
  let r0 = wid.y * u.block;
  let r1 = min(r0 + u.block, u.rows);
  var accW = 0.0;
  var accB = 0.0;
  for (var r = r0; r < r1; r++) {
    let k = r * u.cols + j;
    let g = G[k];
    ${needW ? `accW += g * (${xhat});` : ''}
    ${needB ? 'accB += g;' : ''}
  }
  ${needW ? 'PW[wid.y * u.cols + j] = accW;' : ''}
  ${needB ? 'PB[wid.y * u.cols + j] = accB;' : ''}
}`,
  };
}
