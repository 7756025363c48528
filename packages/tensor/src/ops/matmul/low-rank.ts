// y += scale * (x A^T) B^T in one dispatch, in place: a low-rank update added to a product that
// was just computed (a LoRA adapter's output added to its base layer's, at inference). The
// separate form takes four dispatches and two temporaries (x A^T, its product with B^T, the
// scaled copy); when a layer's output is a handful of rows, as in decoding, dispatches are the
// cost. Each workgroup computes t = A x for its row into workgroup memory, then its slice of
// outputs. t is recomputed by every workgroup of a row, which is R*K products per workgroup
// against the base product's N*K per row: with 512 outputs per workgroup that is R/512 of it.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import type { KernelSpec } from '../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../core/dtype.js';
import { needsGrad } from '../../core/autograd.js';
import type { Tensor } from '../../core/tensor.js';

const WG = 64;
/** Outputs per invocation; a workgroup covers WG * PER outputs of one row. */
const PER = 8;
/** Ranks past this take the unfused form (workgroup memory holds 64 * WG partial sums: 16 KiB, WebGPU's guaranteed size). */
export const LOW_RANK_MAX_RANK = 64;

const specs = new Map<string, KernelSpec>();

/** One kernel per activation dtype; the rank is a uniform, so its loops are not unrolled (unrolled, they took seconds to compile on a software adapter). */
function lowRankSpec(xDtype: DType): KernelSpec {
  let spec = specs.get(xDtype);
  if (!spec) specs.set(xDtype, (spec = buildSpec(xDtype)));
  return spec;
}

function buildSpec(xDtype: DType): KernelSpec {
  const f16 = xDtype === 'f16';
  return {
    name: 'low_rank_add',
    variant: xDtype,
    bindings: ['read_write', 'read', 'read', 'read'],
    uniforms: [
      { name: 'k', type: 'u32' },
      { name: 'n', type: 'u32' },
      { name: 'scale', type: 'f32' },
      { name: 'r', type: 'u32' },
    ],
    ...(f16 ? { features: ['shader-f16'] } : {}),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<${wgslStorageType(xDtype)}>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
struct Params { k: u32, n: u32, scale: f32, r: u32, }
@group(0) @binding(4) var<uniform> u: Params;
var<workgroup> sh: array<f32, ${LOW_RANK_MAX_RANK * WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y;
  let xBase = row * u.k;
  // t = A x: each invocation sums its strided share of k for every rank row, then rank row j's
  // ${WG} partial sums are added up by invocation j.
  var p: array<f32, ${LOW_RANK_MAX_RANK}>;
  for (var k = lid; k < u.k; k += ${WG}u) {
    let xv = f32(${wgslLoad(xDtype, 'x', 'xBase + k')});
    for (var j = 0u; j < u.r; j++) { p[j] = fma(a[j * u.k + k], xv, p[j]); }
  }
  for (var j = 0u; j < u.r; j++) { sh[j * ${WG}u + lid] = p[j]; }
  workgroupBarrier();
  if (lid < u.r) {
    var s = 0.0;
    for (var i = 0u; i < ${WG}u; i++) { s += sh[lid * ${WG}u + i]; }
    sh[lid * ${WG}u] = s;
  }
  workgroupBarrier();
  for (var q = 0u; q < ${PER}u; q++) {
    let col = wid.x * ${WG * PER}u + q * ${WG}u + lid;
    if (col < u.n) {
      var acc = 0.0;
      for (var j = 0u; j < u.r; j++) { acc = fma(sh[j * ${WG}u], b[col * u.r + j], acc); }
      let o = row * u.n + col;
      y[o] = y[o] + u.scale * acc;
    }
  }
}`,
  };
}

/**
 * Whether `addLowRankInPlace` takes these operands: no gradient wanted, f32 `y`, `a` and `b`,
 * rank up to LOW_RANK_MAX_RANK, aligned storage and a row count one dispatch covers.
 */
export function lowRankFusable(y: Tensor, x: Tensor, a: Tensor, b: Tensor): boolean {
  const rt = y.rt;
  const align = rt.gpu.info.limits.minStorageBufferOffsetAlignment;
  const rank = a.shape[0] ?? 0;
  const rows = x.numel / (x.shape[x.ndim - 1] ?? 1);
  return (
    !needsGrad(y, x, a, b) &&
    y.dtype === 'f32' &&
    a.dtype === 'f32' &&
    b.dtype === 'f32' &&
    (x.dtype === 'f32' || (x.dtype === 'f16' && rt.has('shader-f16')) || x.dtype === 'bf16') &&
    rank > 0 &&
    rank <= LOW_RANK_MAX_RANK &&
    LOW_RANK_MAX_RANK * WG * 4 <= rt.gpu.info.limits.maxComputeWorkgroupStorageSize &&
    rows > 0 &&
    rows <= rt.gpu.info.limits.maxComputeWorkgroupsPerDimension &&
    [y, x, a, b].every((t) => t.byteOffset % align === 0)
  );
}

/**
 * y += scale * (x A^T) B^T, in place, for x [..., K], A [R, K], B [N, R] and y [..., N] with the
 * same leading dims. Inference only: no autograd. Sums in f32 with another order than the
 * unfused form, so results agree with it to f32 round-off (a few ulp of the update), not bit
 * for bit.
 */
export function addLowRankInPlace(y: Tensor, x: Tensor, a: Tensor, b: Tensor, scale: number): Tensor {
  for (const t of [y, x, a, b]) t.assertAlive('addLowRankInPlace');
  const K = x.shape[x.ndim - 1] ?? 0;
  const R = a.shape[0] ?? 0;
  const N = y.shape[y.ndim - 1] ?? 0;
  const rows = x.numel / Math.max(1, K);
  const got = `y [${y.shape.join(', ')}], x [${x.shape.join(', ')}], A [${a.shape.join(', ')}], B [${b.shape.join(', ')}]`;
  if (a.ndim !== 2 || b.ndim !== 2 || a.shape[1] !== K || b.shape[0] !== N || b.shape[1] !== R || y.numel !== rows * N) {
    throw new ShapeMismatchError({ op: 'addLowRankInPlace', expected: 'x [..., K], A [R, K], B [N, R], y [..., N] with the rows of x', got });
  }
  if (!lowRankFusable(y, x, a, b)) {
    throw new DTypeError({
      op: 'addLowRankInPlace',
      expected: `no gradient, f32 y/A/B, f32/f16/bf16 x, rank 1..${LOW_RANK_MAX_RANK}, aligned storage (check lowRankFusable first)`,
      got: `${got}; dtypes ${y.dtype}, ${x.dtype}, ${a.dtype}, ${b.dtype}`,
    });
  }
  if (rows === 0 || N === 0) return y;
  y.rt.dispatch(lowRankSpec(x.dtype), [y.binding(), x.binding(), a.binding(), b.binding()], [K, N, scale, R], [Math.ceil(N / (WG * PER)), rows, 1]);
  return y;
}
