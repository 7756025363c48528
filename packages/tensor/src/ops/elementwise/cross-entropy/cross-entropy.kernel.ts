// WGSL for cross-entropy over a vocabulary: per-row logsumexp and loss in one pass over the row
// (online max/sum, nothing of size [N, V] stored), the reduction to a scalar, and the gradient
// (softmax - onehot) * g * w recomputed from the logits and the saved logsumexp.
import { GRID_HELPERS, type KernelSpec } from '../../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { rowStatsWgsl } from '../softmax/softmax.kernel.js';
import { reduceEnable, reduceEntryInit, reduceEntryParams, ROW_INDEX, WG_MAX_F32, WG_SUM_F32, WG_SUM_U32, wgReduceFns, type ReduceMode } from '../wg-reduce.js';

/** A quiet NaN built at run time: a NaN constant expression is a WGSL compile error. */
const NAN = 'var<private> nan_bits: u32 = 0x7fc00000u;';

/**
 * One workgroup per row of the piece: LSE[row0 + r] = logsumexp(row); LOSS[row0 + r] = lse -
 * x[label], 0 where label == ignore, NaN where the label is outside [0, V).
 * Bindings: logits (dtype, the piece), labels (i32), lse (f32), loss (f32).
 */
export function ceForwardSpec(dtype: DType, mode: ReduceMode, wg: number): KernelSpec {
  const load = (i: string) => `f32(${wgslLoad(dtype, 'X', i)})`;
  return {
    name: 'cross_entropy',
    variant: `${dtype}:${mode}:${wg}`,
    bindings: ['read', 'read', 'read_write', 'read_write'],
    uniforms: [
      { name: 'rows', type: 'u32' },
      { name: 'len', type: 'u32' },
      { name: 'row0', type: 'u32' },
      { name: 'ignore', type: 'i32' },
    ],
    ...(mode === 'subgroup' ? { features: ['subgroups'] } : {}),
    wgsl: /* wgsl */ `${reduceEnable(mode)}
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
@group(0) @binding(1) var<storage, read> LABELS: array<i32>;
@group(0) @binding(2) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(3) var<storage, read_write> LOSS: array<f32>;
struct Params { rows: u32, len: u32, row0: u32, ignore: i32, }
@group(0) @binding(4) var<uniform> u: Params;
${NAN}
${wgReduceFns(mode, wg, [WG_MAX_F32, WG_SUM_F32])}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32${reduceEntryParams(mode)}) {
  ${reduceEntryInit(mode)}
  ${ROW_INDEX}
  if (row >= u.rows) { return; }
  let len = u.len;
  let base = row * len;
  ${rowStatsWgsl(wg, load)}
  if (lid == 0u) {
    let r = u.row0 + row;
    let log_sum = log(row_sum);
    LSE[r] = row_max + log_sum;
    let label = LABELS[r];
    if (label == u.ignore) { LOSS[r] = 0.0; }
    else if (label < 0 || u32(label) >= len) { LOSS[r] = bitcast<f32>(nan_bits); }
    // (max - x[label]) + log(sum) keeps the loss accurate when the logits are large.
    else { LOSS[r] = (row_max - ${load('base + u32(label)')}) + log_sum; }
  }
}`,
  };
}

/**
 * Reduces the per-row losses in one workgroup. how = 0: sum; 1: sum / (labels != ignore), NaN when
 * no label counts; 2: sum / denom. Also writes W[0], the factor each counted row's gradient takes.
 * Bindings: loss, labels, out [1], w [1].
 */
export function ceReduceSpec(mode: ReduceMode): KernelSpec {
  const wg = 256;
  return {
    name: 'cross_entropy_reduce',
    variant: mode,
    bindings: ['read', 'read', 'read_write', 'read_write'],
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'ignore', type: 'i32' },
      { name: 'how', type: 'u32' },
      { name: 'denom', type: 'f32' },
    ],
    ...(mode === 'subgroup' ? { features: ['subgroups'] } : {}),
    wgsl: /* wgsl */ `${reduceEnable(mode)}
@group(0) @binding(0) var<storage, read> LOSS: array<f32>;
@group(0) @binding(1) var<storage, read> LABELS: array<i32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(3) var<storage, read_write> W: array<f32>;
struct Params { n: u32, ignore: i32, how: u32, denom: f32, }
@group(0) @binding(4) var<uniform> u: Params;
${NAN}
${wgReduceFns(mode, wg, [WG_SUM_F32, WG_SUM_U32])}
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32${reduceEntryParams(mode)}) {
  ${reduceEntryInit(mode)}
  var acc = 0.0;
  var blk = 0.0;
  var k = 0u;
  var cnt = 0u;
  for (var i = lid; i < u.n; i += ${wg}u) {
    blk += LOSS[i];
    k += 1u;
    if (k == 32u) { acc += blk; blk = 0.0; k = 0u; }
    cnt += select(0u, 1u, LABELS[i] != u.ignore);
  }
  acc += blk;
  let total = wg_sum_f32(acc, lid);
  let count = wg_sum_u32(cnt, lid);
  if (lid == 0u) {
    if (u.how == 0u) { OUT[0] = total; W[0] = 1.0; }
    else if (u.how == 1u) {
      if (count == 0u) { OUT[0] = bitcast<f32>(nan_bits); W[0] = 0.0; }
      else { OUT[0] = total / f32(count); W[0] = 1.0 / f32(count); }
    }
    else { OUT[0] = total / u.denom; W[0] = 1.0 / u.denom; }
  }
}`,
  };
}

/**
 * dlogits for the elements of a piece of rows: (exp(x - lse) - onehot(label)) * gw, 0 on ignored
 * rows, NaN on rows whose label is outside [0, V). gw = G[0] * W[0] for a scalar loss, G[row] for
 * reduction 'none'. Bindings: logits (piece), labels, lse, g, [w,] dx (piece).
 */
export function ceBackwardSpec(dtype: DType, scalar: boolean): KernelSpec {
  const n0 = scalar ? 5 : 4;
  return {
    name: 'cross_entropy_backward',
    variant: `${dtype}:${scalar ? 'scalar' : 'none'}`,
    bindings: scalar ? ['read', 'read', 'read', 'read', 'read', 'read_write'] : ['read', 'read', 'read', 'read', 'read_write'],
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'len', type: 'u32' },
      { name: 'row0', type: 'u32' },
      { name: 'ignore', type: 'i32' },
    ],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
@group(0) @binding(1) var<storage, read> LABELS: array<i32>;
@group(0) @binding(2) var<storage, read> LSE: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
${scalar ? '@group(0) @binding(4) var<storage, read> W: array<f32>;' : ''}
@group(0) @binding(${n0}) var<storage, read_write> DX: array<f32>;
struct Params { n: u32, len: u32, row0: u32, ignore: i32, }
@group(0) @binding(${n0 + 1}) var<uniform> u: Params;
${NAN}
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let r = u.row0 + i / u.len;
  let v = i % u.len;
  let label = LABELS[r];
  if (label == u.ignore) { DX[i] = 0.0; return; }
  if (label < 0 || u32(label) >= u.len) { DX[i] = bitcast<f32>(nan_bits); return; }
  let gw = ${scalar ? 'G[0] * W[0]' : 'G[r]'};
  let p = exp(f32(${wgslLoad(dtype, 'X', 'i')}) - LSE[r]);
  DX[i] = (p - select(0.0, 1.0, v == u32(label))) * gw;
}`,
  };
}

/** Causal-LM label shift: out[b, t] = labels[b, t + 1], ignore at t = T - 1. */
export function shiftLabelsSpec(): KernelSpec {
  return {
    name: 'shift_labels',
    variant: 'i32',
    bindings: ['read', 'read_write'],
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'T', type: 'u32' },
      { name: 'ignore', type: 'i32' },
    ],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> L: array<i32>;
@group(0) @binding(1) var<storage, read_write> O: array<i32>;
struct Params { n: u32, T: u32, ignore: i32, }
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  O[i] = select(u.ignore, L[i + 1u], i % u.T + 1u < u.T);
}`,
  };
}
