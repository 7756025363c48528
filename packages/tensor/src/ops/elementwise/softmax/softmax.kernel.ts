// WGSL for softmax / logSoftmax over the last axis, one workgroup per row: per-invocation online
// (max, sum of exp) statistics, merged across the workgroup, then a second pass that writes.
import type { KernelSpec, UniformField } from '../../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { reduceEnable, reduceEntryInit, reduceEntryParams, ROW_INDEX, WG_MAX_F32, WG_SUM_F32, wgReduceFns, type ReduceMode } from '../wg-reduce.js';

export type SoftmaxKind = 'softmax' | 'log_softmax';

/**
 * WGSL statements that leave `row_max` and `row_sum` (sum of exp(x - row_max)) for the row of `len`
 * elements starting at `base`, read through `load(i)`. Needs WG_MAX_F32 and WG_SUM_F32. The
 * running max starts at the lowest finite f32, so rows of -inf give a zero sum, not NaN.
 */
export function rowStatsWgsl(wg: number, load: (i: string) => string): string {
  return /* wgsl */ `
  var m = -0x1.fffffep+127f;
  var s = 0.0;
  for (var i = lid; i < len; i += ${wg}u) {
    let v = ${load('base + i')};
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; }
    else { s += exp(v - m); }
  }
  let row_max = wg_max_f32(m, lid);
  let row_sum = wg_sum_f32(s * exp(m - row_max), lid);`;
}

const U: UniformField[] = [
  { name: 'rows', type: 'u32' },
  { name: 'len', type: 'u32' },
];

/** y = softmax(x) or log_softmax(x) over rows of `len`. Bindings: x (dtype), y (f32). */
export function softmaxSpec(kind: SoftmaxKind, dtype: DType, mode: ReduceMode, wg: number): KernelSpec {
  const load = (i: string) => `f32(${wgslLoad(dtype, 'X', i)})`;
  const write =
    kind === 'softmax'
      ? `let inv = 1.0 / row_sum;
  for (var i = lid; i < len; i += ${wg}u) { Y[base + i] = exp(${load('base + i')} - row_max) * inv; }`
      : // (x - max) is exact for the entries that matter; subtracting max + log(sum) rounded to f32
        // would lose up to half an ulp of the max (3e-5 for logits near 1000).
        `let log_sum = log(row_sum);
  for (var i = lid; i < len; i += ${wg}u) { Y[base + i] = (${load('base + i')} - row_max) - log_sum; }`;
  return {
    name: 'softmax',
    variant: `${kind}:${dtype}:${mode}:${wg}`,
    bindings: ['read', 'read_write'],
    uniforms: U,
    ...(mode === 'subgroup' ? { features: ['subgroups'] } : {}),
    wgsl: /* wgsl */ `${reduceEnable(mode)}
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
struct Params { rows: u32, len: u32, }
@group(0) @binding(2) var<uniform> u: Params;
${wgReduceFns(mode, wg, [WG_MAX_F32, WG_SUM_F32])}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32${reduceEntryParams(mode)}) {
  ${reduceEntryInit(mode)}
  ${ROW_INDEX}
  if (row >= u.rows) { return; }
  let len = u.len;
  let base = row * len;
  ${rowStatsWgsl(wg, load)}
  ${write}
}`,
  };
}

/**
 * Backward from the saved output y and the gradient g. softmax: dx = y * (g - sum(g * y));
 * log_softmax: dx = g - exp(y) * sum(g). Bindings: y, g, dx (all f32).
 */
export function softmaxBackwardSpec(kind: SoftmaxKind, mode: ReduceMode, wg: number): KernelSpec {
  const dot = kind === 'softmax' ? 'G[base + i] * Y[base + i]' : 'G[base + i]';
  const write = kind === 'softmax' ? 'DX[base + i] = Y[base + i] * (G[base + i] - total);' : 'DX[base + i] = G[base + i] - exp(Y[base + i]) * total;';
  return {
    name: 'softmax_backward',
    variant: `${kind}:${mode}:${wg}`,
    bindings: ['read', 'read', 'read_write'],
    uniforms: U,
    ...(mode === 'subgroup' ? { features: ['subgroups'] } : {}),
    wgsl: /* wgsl */ `${reduceEnable(mode)}
@group(0) @binding(0) var<storage, read> Y: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;
struct Params { rows: u32, len: u32, }
@group(0) @binding(3) var<uniform> u: Params;
${wgReduceFns(mode, wg, [WG_SUM_F32])}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32${reduceEntryParams(mode)}) {
  ${reduceEntryInit(mode)}
  ${ROW_INDEX}
  if (row >= u.rows) { return; }
  let len = u.len;
  let base = row * len;
  var acc = 0.0;
  for (var i = lid; i < len; i += ${wg}u) { acc += ${dot}; }
  let total = wg_sum_f32(acc, lid);
  for (var i = lid; i < len; i += ${wg}u) { ${write} }
}`,
  };
}
