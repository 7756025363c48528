// WGSL for the embedding gather and its deterministic scatter-add gradient (a counting sort of
// token ids on u32 atomics, a stable rank inside each id's segment, then per-id column sums).
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';
import { GRID_HELPERS, uniforms, type KernelSpec } from '../../../core/kernel.js';

const MAIN = `@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);`;

/**
 * out[t, c] = W[ids[t] - row0, c] for ids inside this vocab chunk [row0, row0 + rows). The
 * dispatch with `first` = 1 also writes NaN rows for ids outside [0, vocab).
 */
export function embeddingGatherSpec(wType: DType): KernelSpec {
  return {
    name: 'embedding_gather',
    variant: wType,
    bindings: ['read', 'read', 'read_write'],
    uniforms: uniforms('n:u32', 'd:u32', 'vocab:u32', 'row0:u32', 'rows:u32', 'first:u32', 'nan_bits:u32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> IDS: array<i32>;
@group(0) @binding(1) var<storage, read> W: array<${wgslStorageType(wType)}>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
struct Params { n: u32, d: u32, vocab: u32, row0: u32, rows: u32, first: u32, nan_bits: u32, }
@group(0) @binding(3) var<uniform> u: Params;
${GRID_HELPERS}
${MAIN}
  if (i >= u.n) { return; }
  let id = IDS[i / u.d];
  if (id < 0 || u32(id) >= u.vocab) {
    if (u.first == 1u) { O[i] = bitcast<f32>(u.nan_bits); }
    return;
  }
  let v = u32(id);
  if (v < u.row0 || v >= u.row0 + u.rows) { return; }
  let k = (v - u.row0) * u.d + i % u.d;
  O[i] = f32(${wgslLoad(wType, 'W', 'k')});
}`,
  };
}

/** counts[id] += 1 for every token that takes part in the gradient. */
export function embeddingHistogramSpec(): KernelSpec {
  return {
    name: 'embedding_hist',
    variant: '',
    bindings: ['read', 'read_write'],
    uniforms: uniforms('tokens:u32', 'vocab:u32', 'pad:i32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> IDS: array<i32>;
@group(0) @binding(1) var<storage, read_write> CNT: array<atomic<u32>>;
struct Params { tokens: u32, vocab: u32, pad: i32, }
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
${MAIN}
  if (i >= u.tokens) { return; }
  let id = IDS[i];
  if (id < 0 || u32(id) >= u.vocab || id == u.pad) { return; }
  atomicAdd(&CNT[u32(id)], 1u);
}`,
  };
}

/**
 * Exclusive prefix sum of counts into OFF[0..vocab], OFF[vocab] = total, by one workgroup: each
 * lane sums a contiguous slice, lane 0 scans the 256 slice sums, each lane writes its slice.
 */
export function embeddingScanSpec(): KernelSpec {
  return {
    name: 'embedding_scan',
    variant: '',
    bindings: ['read', 'read_write'],
    uniforms: uniforms('vocab:u32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> CNT: array<u32>;
@group(0) @binding(1) var<storage, read_write> OFF: array<u32>;
struct Params { vocab: u32, }
@group(0) @binding(2) var<uniform> u: Params;
var<workgroup> sums: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let per = (u.vocab + 255u) / 256u;
  let lo = min(lid * per, u.vocab);
  let hi = min(lo + per, u.vocab);
  var s = 0u;
  for (var v = lo; v < hi; v++) { s += CNT[v]; }
  sums[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0u;
    for (var k = 0u; k < 256u; k++) {
      let c = sums[k];
      sums[k] = run;
      run += c;
    }
    OFF[u.vocab] = run;
  }
  workgroupBarrier();
  var at = sums[lid];
  for (var v = lo; v < hi; v++) {
    OFF[v] = at;
    at += CNT[v];
  }
}`,
  };
}

/** Places every token into its id's segment (in whatever order the atomics hand out slots). */
export function embeddingScatterSpec(): KernelSpec {
  return {
    name: 'embedding_scatter',
    variant: '',
    bindings: ['read', 'read', 'read_write', 'read_write'],
    uniforms: uniforms('tokens:u32', 'vocab:u32', 'pad:i32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> IDS: array<i32>;
@group(0) @binding(1) var<storage, read> OFF: array<u32>;
@group(0) @binding(2) var<storage, read_write> CUR: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> SLOT: array<u32>;
struct Params { tokens: u32, vocab: u32, pad: i32, }
@group(0) @binding(4) var<uniform> u: Params;
${GRID_HELPERS}
${MAIN}
  if (i >= u.tokens) { return; }
  let id = IDS[i];
  if (id < 0 || u32(id) >= u.vocab || id == u.pad) { return; }
  let v = u32(id);
  SLOT[OFF[v] + atomicAdd(&CUR[v], 1u)] = i;
}`,
  };
}

/**
 * Makes the order deterministic: a token's final place in its segment is the number of tokens
 * of the same segment with a smaller index (segments are short but this is quadratic in them).
 */
export function embeddingRankSpec(): KernelSpec {
  return {
    name: 'embedding_rank',
    variant: '',
    bindings: ['read', 'read', 'read', 'read', 'read_write'],
    uniforms: uniforms('tokens:u32', 'vocab:u32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> IDS: array<i32>;
@group(0) @binding(1) var<storage, read> OFF: array<u32>;
@group(0) @binding(2) var<storage, read> CNT: array<u32>;
@group(0) @binding(3) var<storage, read> SLOT: array<u32>;
@group(0) @binding(4) var<storage, read_write> SORTED: array<u32>;
struct Params { tokens: u32, vocab: u32, }
@group(0) @binding(5) var<uniform> u: Params;
${GRID_HELPERS}
${MAIN}
  if (i >= OFF[u.vocab]) { return; }
  let t = SLOT[i];
  let v = u32(IDS[t]);
  let start = OFF[v];
  let count = CNT[v];
  var rank = 0u;
  for (var k = 0u; k < count; k++) {
    if (SLOT[start + k] < t) { rank++; }
  }
  SORTED[start + rank] = t;
}`,
  };
}

/**
 * dW[id - row0, c] = sum of G[t, c] over the tokens of id's segment, in token order; one
 * invocation per (segment head, column), for ids inside this vocab chunk.
 */
export function embeddingReduceSpec(): KernelSpec {
  return {
    name: 'embedding_reduce',
    variant: '',
    bindings: ['read', 'read', 'read', 'read', 'read', 'read_write'],
    uniforms: uniforms('n:u32', 'd:u32', 'vocab:u32', 'row0:u32', 'rows:u32'),
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> IDS: array<i32>;
@group(0) @binding(1) var<storage, read> OFF: array<u32>;
@group(0) @binding(2) var<storage, read> CNT: array<u32>;
@group(0) @binding(3) var<storage, read> SORTED: array<u32>;
@group(0) @binding(4) var<storage, read> G: array<f32>;
@group(0) @binding(5) var<storage, read_write> DW: array<f32>;
struct Params { n: u32, d: u32, vocab: u32, row0: u32, rows: u32, }
@group(0) @binding(6) var<uniform> u: Params;
${GRID_HELPERS}
${MAIN}
  if (i >= u.n) { return; }
  let s = i / u.d;
  if (s >= OFF[u.vocab]) { return; }
  let v = u32(IDS[SORTED[s]]);
  let start = OFF[v];
  if (s != start || v < u.row0 || v >= u.row0 + u.rows) { return; }
  let c = i % u.d;
  var acc = 0.0;
  for (var k = 0u; k < CNT[v]; k++) {
    acc += G[SORTED[start + k] * u.d + c];
  }
  DW[(v - u.row0) * u.d + c] = acc;
}`,
  };
}
