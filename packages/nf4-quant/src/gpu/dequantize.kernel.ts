// WGSL for 4-bit dequantization: each invocation expands one packed word (8 values) with its
// block's absmax, rebuilt once per block per workgroup, into f32 or rounded f16/bf16 words.
import { GRID_HELPERS, uniforms, type KernelSpec } from '@peft-ts/tensor';
import { absmaxWgsl, nibbleShift, Q4_VALUE_WGSL } from './decode-wgsl.js';
import { WGSL_FLOAT_BITS } from './float-bits.js';

export type DequantizeDType = 'f32' | 'f16' | 'bf16';

/** Elements one workgroup expands (256 invocations x 8). */
export const DEQUANTIZE_SPAN = 2048;

export const DEQUANTIZE_UNIFORMS = uniforms('n:u32', 'pOff:u32', 'groups:u32', 'outWords:u32', 'blockBase:u32', 'codeBase:u32', 'offset:u32');

function store(out: DequantizeDType): string {
  if (out === 'f32') {
    return Array.from({ length: 8 }, (_, j) => `if (e0 + ${j}u < u.n) { O[e0 + ${j}u] = v${j}; }`).join('\n  ');
  }
  const cvt = out === 'f16' ? 'fb_to_f16' : 'fb_to_bf16';
  return Array.from(
    { length: 4 },
    (_, k) =>
      `if (g * 4u + ${k}u < u.outWords) { O[g * 4u + ${k}u] = ${cvt}(v${2 * k}) | select(0u, ${cvt}(v${2 * k + 1}) << 16u, e0 + ${2 * k + 1}u < u.n); }`,
  ).join('\n  ');
}

/**
 * Bindings: P (packed words of this chunk), S (absmax bits, or qabsmax bytes), NST (nested absmax,
 * double quant only), T (code tables), O (output words). Uniforms: n elements in the chunk, pOff
 * (P word offset), groups (packed words), outWords (16-bit outputs: output words), blockBase (the chunk's first
 * block), codeBase (NF4 or FP4 table), offset (f32 bits of the double-quant offset).
 */
export function dequantizeSpec(out: DequantizeDType, doubleQuant: boolean, blocksize: number): KernelSpec {
  const perWorkgroup = Math.max(1, DEQUANTIZE_SPAN / blocksize);
  const values = Array.from({ length: 8 }, (_, j) => `let v${j} = q4_value(sCode[(word >> ${nibbleShift(j)}u) & 0xfu], am);`).join('\n  ');
  const bindings: KernelSpec['bindings'] = doubleQuant ? ['read', 'read', 'read', 'read', 'read_write'] : ['read', 'read', 'read', 'read_write'];
  const outBinding = bindings.length - 1;
  return {
    name: 'nf4_dequantize',
    variant: `${out}:${doubleQuant ? 'dq' : 'plain'}:${blocksize}`,
    bindings,
    uniforms: DEQUANTIZE_UNIFORMS,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> S: array<u32>;
${doubleQuant ? '@group(0) @binding(2) var<storage, read> NST: array<u32>;' : ''}
@group(0) @binding(${outBinding - 1}) var<storage, read> T: array<u32>;
@group(0) @binding(${outBinding}) var<storage, read_write> O: array<u32>;
struct Params { n: u32, pOff: u32, groups: u32, outWords: u32, blockBase: u32, codeBase: u32, offset: u32, }
@group(0) @binding(${outBinding + 1}) var<uniform> u: Params;
${GRID_HELPERS}
${WGSL_FLOAT_BITS}
${absmaxWgsl(doubleQuant)}
${Q4_VALUE_WGSL}
const BS: u32 = ${blocksize}u;
var<workgroup> sCode: array<u32, 16>;
var<workgroup> sAbs: array<u32, ${perWorkgroup}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * nwg.x + wid.x;
  if (lid < 16u) { sCode[lid] = T[u.codeBase + lid]; }
  let first = (wg * ${DEQUANTIZE_SPAN}u) / BS;
  if (lid < ${perWorkgroup}u && (first + lid) * BS < u.n) { sAbs[lid] = q4_absmax(u.blockBase + first + lid); }
  workgroupBarrier();
  let g = wg * 256u + lid;
  if (g >= u.groups) { return; }
  let e0 = g * 8u;
  let word = P[u.pOff + g];
  let am = sAbs[e0 / BS - first];
  ${values}
  ${store(out)}
}`,
  };
}
