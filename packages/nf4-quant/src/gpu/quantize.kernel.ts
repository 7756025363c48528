// WGSL for blockwise 4-bit quantization: one pass that takes each block's absmax (an integer max
// over magnitude bits), its exact float32 reciprocal, and packs the indices two per byte.
import { GRID_HELPERS, uniforms, type KernelSpec } from '@peft-ts/tensor';
import type { QuantType } from '../index.js';
import { indexWgsl } from './codes.js';
import { WGSL_FLOAT_BITS } from './float-bits.js';

export type QuantizeInputDType = 'f32' | 'f16' | 'bf16';

export const QUANTIZE_WORKGROUP = 256;

/** Elements per invocation: 8 (one packed word), more for blocks past 2048 so a block fits a workgroup. */
export function elementsPerThread(blocksize: number): number {
  return Math.max(8, blocksize / QUANTIZE_WORKGROUP);
}

/** Elements one workgroup covers. */
export function quantizeSpan(blocksize: number): number {
  return QUANTIZE_WORKGROUP * elementsPerThread(blocksize);
}

export const QUANTIZE_UNIFORMS = uniforms('n:u32', 'xOff:u32', 'pOff:u32', 'words:u32', 'blockBase:u32', 'blocks:u32');

function loadBits(dtype: QuantizeInputDType): string {
  switch (dtype) {
    case 'f32':
      return 'X[u.xOff + i]';
    case 'f16':
      return 'fb_f16_widen((X[(u.xOff + i) >> 1u] >> (((u.xOff + i) & 1u) * 16u)) & 0xffffu)';
    case 'bf16':
      return '((X[(u.xOff + i) >> 1u] >> (((u.xOff + i) & 1u) * 16u)) & 0xffffu) << 16u';
  }
}

/**
 * Bindings: X (the weight, f32 or 16-bit words), P (packed u32 words, 8 indices each), A (absmax
 * as f32 bits, indexed from `blockBase`). Uniforms: n elements, xOff (X element offset), pOff (P
 * word offset), words (packed words to write), blocks (blocks in this dispatch).
 */
export function quantizeSpec(dtype: QuantizeInputDType, type: QuantType, blocksize: number): KernelSpec {
  const ept = elementsPerThread(blocksize);
  const tpb = blocksize / ept;
  return {
    name: 'nf4_quantize',
    variant: `${dtype}:${type}:${blocksize}`,
    bindings: ['read', 'read_write', 'read_write'],
    uniforms: QUANTIZE_UNIFORMS,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<u32>;
@group(0) @binding(1) var<storage, read_write> P: array<u32>;
@group(0) @binding(2) var<storage, read_write> A: array<u32>;
struct Params { n: u32, xOff: u32, pOff: u32, words: u32, blockBase: u32, blocks: u32, }
@group(0) @binding(3) var<uniform> u: Params;
${GRID_HELPERS}
${WGSL_FLOAT_BITS}
${indexWgsl(type)}
const EPT: u32 = ${ept}u;
const TPB: u32 = ${tpb}u;
var<workgroup> sMax: array<u32, ${QUANTIZE_WORKGROUP}>;
var<workgroup> sRecip: array<u32, ${QUANTIZE_WORKGROUP / tpb}>;

fn load_bits(i: u32) -> u32 {
  return ${loadBits(dtype)};
}

@compute @workgroup_size(${QUANTIZE_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = gid(wid, nwg, lid, ${QUANTIZE_WORKGROUP}u);
  let start = t * EPT;
  // NaN is skipped, as fmaxf skips it; comparing magnitude bits as integers orders them exactly.
  var m = 0u;
  for (var j = 0u; j < EPT; j++) {
    let i = start + j;
    if (i < u.n) {
      let a = load_bits(i) & 0x7fffffffu;
      if (a <= 0x7f800000u) { m = max(m, a); }
    }
  }
  sMax[lid] = m;
  workgroupBarrier();
  for (var s = TPB / 2u; s > 0u; s = s >> 1u) {
    if ((lid & (TPB - 1u)) < s) { sMax[lid] = max(sMax[lid], sMax[lid + s]); }
    workgroupBarrier();
  }
  let block = t / TPB;
  if ((lid & (TPB - 1u)) == 0u) {
    let am = sMax[lid];
    if (block < u.blocks) { A[u.blockBase + block] = am; }
    sRecip[lid / TPB] = fb_recip(am);
  }
  workgroupBarrier();
  let r = sRecip[lid / TPB];
  for (var w = 0u; w < EPT / 8u; w++) {
    let word = start / 8u + w;
    if (word < u.words) {
      var packed = 0u;
      for (var j = 0u; j < 8u; j++) {
        let i = word * 8u + j;
        var q = 0u;
        if (i < u.n) {
          q = q4_index(fb_mul(load_bits(i), r));
        } else if (i == u.n && (i & 1u) == 1u) {
          // An odd-length tensor's missing last element is a 0.0 scaled like its block.
          q = q4_index(fb_mul(0u, r));
        }
        packed = packed | (q << ((j >> 1u) * 8u + select(0u, 4u, (j & 1u) == 0u)));
      }
      P[u.pOff + word] = packed;
    }
  }
}`,
  };
}
