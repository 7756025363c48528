// WGSL for sum/max reductions: one workgroup per contiguous row (tree or subgroup reduction),
// a column-tiled kernel for strided axes, and the kernel that spreads gradients back.
import { GRID_HELPERS, type KernelSpec, type UniformField } from '../../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { reduceEnable, reduceEntryInit, reduceEntryParams, ROW_INDEX, WG_MAX_U32, WG_MIN_U32, WG_SUM_F32, wgReduceFns, type ReduceMode } from '../wg-reduce.js';

export type ReduceKind = 'sum' | 'max';

/**
 * Each invocation sums its elements in three levels (blocks of 32 into `mid`, 32 blocks into
 * `acc`), so no partial sum collects more than a few dozen roundings even for very long rows.
 */
const BLOCK = 32;
const FOLD = `k += 1u;
    if (k == ${BLOCK}u) {
      mid += blk; blk = 0.0; k = 0u; m += 1u;
      if (m == ${BLOCK}u) { acc += mid; mid = 0.0; m = 0u; }
    }`;

/**
 * Order-preserving u32 key of an f32: larger value, larger key; -0 equals +0; NaN above everything,
 * so a max over keys propagates NaN like torch.max.
 */
const FKEY = /* wgsl */ `
fn fkey(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0xffffffffu; }
  if (b == 0x80000000u) { b = 0u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}`;

const u32s = (...names: string[]): UniformField[] => names.map((name) => ({ name, type: 'u32' as const }));

/**
 * Rows of length `L` laid end to end (the last one may be short: `n` elements in all); workgroup r
 * reduces row r into output row0 + r (the input is bound from the piece's first row, the small
 * outputs whole). sum: writes scale * sum. max: writes the value and the index of its first
 * maximum, as `ioff + istride * rowStart + position` or, with `indirect`, as IN[rowStart + position]
 * (a later pass over partial maxima carrying the first pass's indices).
 */
export function rowReduceSpec(kind: ReduceKind, dtype: DType, mode: ReduceMode, wg: number, indirect = false): KernelSpec {
  const uniforms: UniformField[] = [...u32s('n', 'L', 'rows', 'row0'), { name: 'scale', type: 'f32' }, ...u32s('ioff', 'istride')];
  const load = (i: string) => `f32(${wgslLoad(dtype, 'X', i)})`;
  const decls =
    kind === 'sum'
      ? `@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;`
      : indirect
        ? `@group(0) @binding(1) var<storage, read> IN: array<i32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<storage, read_write> IDX: array<i32>;
@group(0) @binding(4) var<uniform> u: Params;`
        : `@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<storage, read_write> IDX: array<i32>;
@group(0) @binding(3) var<uniform> u: Params;`;
  const body =
    kind === 'sum'
      ? `
  var acc = 0.0;
  var mid = 0.0;
  var blk = 0.0;
  var k = 0u;
  var m = 0u;
  for (var i = lid; i < len; i += ${wg}u) {
    blk += ${load('base + i')};
    ${FOLD}
  }
  acc += mid + blk;
  let total = wg_sum_f32(acc, lid);
  if (lid == 0u) { O[u.row0 + row] = total * u.scale; }`
      : `
  var best = 0u;
  var at = 0xffffffffu;
  for (var i = lid; i < len; i += ${wg}u) {
    let key = fkey(${load('base + i')});
    if (key > best) { best = key; at = i; }
  }
  let top = wg_max_u32(best, lid);
  let first = wg_min_u32(select(0xffffffffu, at, best == top), lid);
  if (lid == 0u) {
    O[u.row0 + row] = ${load('base + first')};
    IDX[u.row0 + row] = ${indirect ? 'IN[base + first]' : 'i32(u.ioff + u.istride * base + first)'};
  }`;
  const ops = kind === 'sum' ? [WG_SUM_F32] : [WG_MAX_U32, WG_MIN_U32];
  return {
    name: 'reduce_rows',
    variant: `${kind}:${dtype}:${mode}:${wg}${indirect ? ':indirect' : ''}`,
    bindings: kind === 'sum' ? ['read', 'read_write'] : indirect ? ['read', 'read', 'read_write', 'read_write'] : ['read', 'read_write', 'read_write'],
    uniforms,
    ...(mode === 'subgroup' ? { features: ['subgroups'] } : {}),
    wgsl: /* wgsl */ `${reduceEnable(mode)}
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
struct Params { ${uniforms.map((f) => `${f.name}: ${f.type},`).join(' ')} }
${decls}
${wgReduceFns(mode, wg, ops)}
${FKEY}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32${reduceEntryParams(mode)}) {
  ${reduceEntryInit(mode)}
  ${ROW_INDEX}
  if (row >= u.rows) { return; }
  let base = row * u.L;
  let len = min(u.L, u.n - base);
  ${body}
}`,
  };
}

/** Columns per workgroup of the strided kernel, and lanes splitting each column's reduction. */
export const STRIDED_COLS = 32;
const STRIDED_LANES = 8;

/**
 * x viewed as [outer, R, inner], reduced over R: each workgroup covers 32 adjacent columns of one
 * outer index with 8 lanes per column, folded by a workgroup-memory tree.
 */
export function stridedReduceSpec(kind: ReduceKind, dtype: DType): KernelSpec {
  const wg = STRIDED_COLS * STRIDED_LANES;
  const uniforms: UniformField[] = [...u32s('outer', 'R', 'inner', 'colBlocks'), { name: 'scale', type: 'f32' }];
  const load = (i: string) => `f32(${wgslLoad(dtype, 'X', i)})`;
  const folds: string[] = [];
  for (let s = wg / 2; s >= STRIDED_COLS; s /= 2) {
    folds.push(
      kind === 'sum'
        ? `if (lid < ${s}u) { red_v[lid] += red_v[lid + ${s}u]; }\n  workgroupBarrier();`
        : `if (lid < ${s}u) {
    let k2 = red_k[lid + ${s}u];
    let i2 = red_i[lid + ${s}u];
    if (k2 > red_k[lid] || (k2 == red_k[lid] && i2 < red_i[lid])) { red_k[lid] = k2; red_i[lid] = i2; }
  }
  workgroupBarrier();`,
    );
  }
  const body =
    kind === 'sum'
      ? `
  var acc = 0.0;
  if (j < u.inner) {
    var mid = 0.0;
    var blk = 0.0;
    var k = 0u;
    var m = 0u;
    for (var r = lane; r < u.R; r += ${STRIDED_LANES}u) {
      blk += ${load('(o * u.R + r) * u.inner + j')};
      ${FOLD}
    }
    acc += mid + blk;
  }
  red_v[lid] = acc;
  workgroupBarrier();
  ${folds.join('\n  ')}
  if (lid < ${STRIDED_COLS}u && j < u.inner) { O[o * u.inner + j] = red_v[lid] * u.scale; }`
      : `
  var best = 0u;
  var at = 0xffffffffu;
  if (j < u.inner) {
    for (var k = lane; k < u.R; k += ${STRIDED_LANES}u) {
      let key = fkey(${load('(o * u.R + k) * u.inner + j')});
      if (key > best) { best = key; at = k; }
    }
  }
  red_k[lid] = best;
  red_i[lid] = at;
  workgroupBarrier();
  ${folds.join('\n  ')}
  if (lid < ${STRIDED_COLS}u && j < u.inner) {
    let first = red_i[lid];
    O[o * u.inner + j] = ${load('(o * u.R + first) * u.inner + j')};
    IDX[o * u.inner + j] = i32(first);
  }`;
  return {
    name: 'reduce_strided',
    variant: `${kind}:${dtype}`,
    bindings: kind === 'sum' ? ['read', 'read_write'] : ['read', 'read_write', 'read_write'],
    uniforms,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
${kind === 'max' ? '@group(0) @binding(2) var<storage, read_write> IDX: array<i32>;' : ''}
struct Params { ${uniforms.map((f) => `${f.name}: ${f.type},`).join(' ')} }
@group(0) @binding(${kind === 'sum' ? 2 : 3}) var<uniform> u: Params;
${kind === 'sum' ? `var<workgroup> red_v: array<f32, ${wg}>;` : `var<workgroup> red_k: array<u32, ${wg}>;\nvar<workgroup> red_i: array<u32, ${wg}>;`}
${FKEY}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = wid.y * nwg.x + wid.x;
  if (w >= u.outer * u.colBlocks) { return; }
  let o = w / u.colBlocks;
  let j = (w % u.colBlocks) * ${STRIDED_COLS}u + lid % ${STRIDED_COLS}u;
  let lane = lid / ${STRIDED_COLS}u;
  ${body}
}`,
  };
}

/**
 * Gradient of a reduction over x viewed as [outer, R, inner], for the elements [start, start + n)
 * of x. sum: dx = g[o, j] * scale. max: dx = g[o, j] where the position along R is the saved
 * index, else 0.
 */
export function reduceBackwardSpec(kind: ReduceKind): KernelSpec {
  const uniforms: UniformField[] = [...u32s('n', 'start', 'R', 'inner'), { name: 'scale', type: 'f32' }];
  return {
    name: 'reduce_backward',
    variant: kind,
    bindings: kind === 'sum' ? ['read', 'read_write'] : ['read', 'read', 'read_write'],
    uniforms,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> G: array<f32>;
${
  kind === 'sum'
    ? '@group(0) @binding(1) var<storage, read_write> DX: array<f32>;\n@group(0) @binding(2) var<uniform> u: Params;'
    : '@group(0) @binding(1) var<storage, read> IDX: array<i32>;\n@group(0) @binding(2) var<storage, read_write> DX: array<f32>;\n@group(0) @binding(3) var<uniform> u: Params;'
}
struct Params { ${uniforms.map((f) => `${f.name}: ${f.type},`).join(' ')} }
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let e = u.start + i;
  let plane = u.R * u.inner;
  let o = e / plane;
  let rem = e % plane;
  let gi = o * u.inner + rem % u.inner;
  ${kind === 'sum' ? 'DX[i] = G[gi] * u.scale;' : 'DX[i] = select(0.0, G[gi], i32(rem / u.inner) == IDX[gi]);'}
}`,
  };
}
