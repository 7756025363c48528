// WGSL for attention of a few new queries against a key/value cache (generation). One workgroup
// per (batch, query head, query): key chunks are scored into workgroup memory, an online softmax
// carries the running max and sum across chunks, and each lane accumulates a few output dims.
import type { KernelSpec } from '../../core/kernel.js';

export const DECODE_WG = 64;
export const DECODE_CHUNK = 1024;

export function decodeAttentionSpec(headDim: number): KernelSpec {
  const perLane = Math.ceil(headDim / DECODE_WG);
  return {
    name: 'decode_attention',
    variant: `d${headDim}`,
    bindings: ['read', 'read', 'read', 'read', 'read_write'],
    uniforms: [
      { name: 'tq', type: 'u32' },
      { name: 'hq', type: 'u32' },
      { name: 'hkv', type: 'u32' },
      { name: 'maxT', type: 'u32' },
      { name: 'len', type: 'u32' },
      { name: 'window', type: 'u32' },
      { name: 'scale', type: 'f32' },
      { name: 'useMask', type: 'u32' },
    ],
    wgsl: /* wgsl */ `
const D: u32 = ${headDim}u;
const WG: u32 = ${DECODE_WG}u;
const CHUNK: u32 = ${DECODE_CHUNK}u;
const PER_LANE: u32 = ${perLane}u;
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(3) var<storage, read> M: array<i32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
struct Params { tq: u32, hq: u32, hkv: u32, maxT: u32, len: u32, window: u32, scale: f32, useMask: u32, }
@group(0) @binding(5) var<uniform> u: Params;
var<workgroup> qs: array<f32, D>;
var<workgroup> scores: array<f32, CHUNK>;
var<workgroup> red: array<f32, WG>;

fn reduce_max(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn reduce_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(${DECODE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = wid.x;          // query index within the new tokens
  let h = wid.y;          // query head
  let b = wid.z;          // batch row
  let kvh = h / (u.hq / u.hkv);
  let pos = u.len - u.tq + i;  // absolute position of this query
  let qBase = ((b * u.tq + i) * u.hq + h) * D;
  for (var d = lid; d < D; d += WG) { qs[d] = Q[qBase + d]; }
  workgroupBarrier();
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, PER_LANE>;
  for (var c = 0u; c < PER_LANE; c++) { acc[c] = 0.0; }
  let lo = select(0u, pos + 1u - u.window, u.window > 0u && pos + 1u > u.window);
  for (var start = lo; start <= pos; start += CHUNK) {
    let end = min(pos + 1u, start + CHUNK);
    var localMax = -3.0e38;
    for (var j = start + lid; j < end; j += WG) {
      var s = -3.0e38;
      let visible = u.useMask == 0u || M[b * u.maxT + j] != 0;
      if (visible) {
        let kBase = ((b * u.maxT + j) * u.hkv + kvh) * D;
        var dot = 0.0;
        for (var d = 0u; d < D; d++) { dot += qs[d] * K[kBase + d]; }
        s = dot * u.scale;
      }
      scores[j - start] = s;
      localMax = max(localMax, s);
    }
    let chunkMax = reduce_max(lid, localMax);
    let newM = max(m, chunkMax);
    var localSum = 0.0;
    for (var j = start + lid; j < end; j += WG) {
      let s = scores[j - start];
      let p = select(0.0, exp(s - newM), s > -1.0e38);
      scores[j - start] = p;
      localSum += p;
    }
    let chunkSum = reduce_sum(lid, localSum);
    let alpha = select(0.0, exp(m - newM), m > -1.0e38);
    l = l * alpha + chunkSum;
    for (var c = 0u; c < PER_LANE; c++) {
      let d = lid + c * WG;
      if (d < D) {
        var a = acc[c] * alpha;
        for (var j = start; j < end; j++) {
          a += scores[j - start] * V[((b * u.maxT + j) * u.hkv + kvh) * D + d];
        }
        acc[c] = a;
      }
    }
    m = newM;
    workgroupBarrier();
  }
  let oBase = ((b * u.tq + i) * u.hq + h) * D;
  for (var c = 0u; c < PER_LANE; c++) {
    let d = lid + c * WG;
    if (d < D) { O[oBase + d] = select(0.0, acc[c] / l, l > 0.0); }
  }
}`,
  };
}
