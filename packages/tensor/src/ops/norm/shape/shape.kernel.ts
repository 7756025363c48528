// WGSL for the copy kernels behind the shape ops and casts. Elements move as raw bits; each
// invocation owns one 32-bit output word (one 4-byte element or two 16-bit ones), so 16-bit
// outputs never race on shared words.
import { DTYPE_BYTES, type DType } from '../../../core/dtype.js';
import { GRID_HELPERS, type BindingKind, type KernelSpec, type UniformField } from '../../../core/kernel.js';
import { MAX_RANK } from '../../shape-utils.js';
import { WGSL_BIT_CONVERSIONS } from '../common/wgsl.js';

/** Output elements per 32-bit word. */
export function perWord(dtype: DType): number {
  return 4 / DTYPE_BYTES[dtype];
}

/** WGSL expression: the bits of element `j` of u32-bound buffer `buf` holding `dtype`. */
function readBits(dtype: DType, buf: string, j: string): string {
  return DTYPE_BYTES[dtype] === 4 ? `${buf}[${j}]` : `((${buf}[(${j}) >> 1u] >> (((${j}) & 1u) * 16u)) & 0xffffu)`;
}

/** WGSL expression converting raw bits of `from` into raw bits of `to` (floats round to nearest even). */
function convertBits(from: DType, to: DType, b: string): string {
  if (from === to) return b;
  const toF32 = from === 'f16' ? `nb_f16_to_f32(${b})` : from === 'bf16' ? `(${b} << 16u)` : b;
  if (to === 'f32') return toF32;
  return to === 'f16' ? `nb_f32_to_f16(${toF32})` : `nb_f32_to_bf16(${toF32})`;
}

function wordLoop(to: DType, element: string, keep: boolean): string {
  const per = perWord(to);
  if (per === 1) return `var word = ${keep ? 'O[w]' : '0u'};\n  { let j = w; ${element} }`;
  return `var word = ${keep ? 'O[w]' : '0u'};
  for (var e = 0u; e < 2u; e++) {
    let j = w * 2u + e;
    if (j >= u.n) { break; }
    ${element}
  }`;
}

/** Stores `bits` as element e of `word` (for 16-bit) or as the word. */
function put(to: DType, bits: string): string {
  return perWord(to) === 1 ? `word = ${bits};` : `word = (word & ~(0xffffu << (e * 16u))) | ((${bits}) << (e * 16u));`;
}

const rankDims = (p: string) => Array.from({ length: MAX_RANK }, (_, k) => `${p}${k}`);

/**
 * out[j] = convert(src[off + sum_k c_k * s_k]) where c is j's index in the output shape d: one
 * kernel for permute, narrow, expand, contiguous copies and casts. `rank` is how many of the
 * (right-aligned) dims are in use: the caller drops size-1 dims and merges dims the source steps
 * through contiguously, so most copies decode one or two indices (integer division is dear on
 * some adapters).
 */
export function stridedCopySpec(from: DType, to: DType, rank = MAX_RANK): KernelSpec {
  const fields: UniformField[] = [
    { name: 'n', type: 'u32' },
    { name: 'off', type: 'u32' },
    ...rankDims('d').map((name) => ({ name, type: 'u32' as const })),
    ...rankDims('s').map((name) => ({ name, type: 'u32' as const })),
  ];
  const index: string[] = [];
  const first = MAX_RANK - Math.max(1, Math.min(MAX_RANK, rank));
  for (let k = MAX_RANK - 1; k >= first; k--) {
    // The outermost dim in use takes what is left, with no division.
    index.push(k === first ? `src += rem * u.s${k};` : `{ let c = rem % u.d${k}; rem = rem / u.d${k}; src += c * u.s${k}; }`);
  }
  const element = `var rem = j; var src = u.off; ${index.join(' ')} ${put(to, convertBits(from, to, readBits(from, 'S', 'src')))}`;
  const words = perWord(to) === 1 ? 'u.n' : '(u.n + 1u) / 2u';
  return {
    name: 'strided_copy',
    variant: `${from}:${to}:r${rank}`,
    bindings: ['read', 'read_write'],
    uniforms: fields,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> S: array<u32>;
@group(0) @binding(1) var<storage, read_write> O: array<u32>;
struct Params { ${fields.map((f) => `${f.name}: ${f.type},`).join(' ')} }
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
${from === to ? '' : WGSL_BIT_CONVERSIONS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = gid(wid, nwg, lid, 256u);
  if (w >= ${words}) { return; }
  ${wordLoop(to, element, false)}
  O[w] = word;
}`,
  };
}

/**
 * A block of rows of 32-bit elements placed into a wider matrix: O[(rowBase + r) * ldo + col0 + c]
 * = S[(rowBase + r) * cols + c]. A 2-D grid (x: columns, y: rows) with no integer division,
 * which a CPU adapter would run lane by lane.
 */
export function copyRowsSpec(): KernelSpec {
  const fields: UniformField[] = ['rows', 'cols', 'ldo', 'col0', 'rowBase'].map((name) => ({ name, type: 'u32' as const }));
  return {
    name: 'copy_rows',
    variant: 'u32',
    bindings: ['read', 'read_write'],
    uniforms: fields,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> S: array<u32>;
@group(0) @binding(1) var<storage, read_write> O: array<u32>;
struct Params { ${fields.map((f) => `${f.name}: ${f.type},`).join(' ')} }
@group(0) @binding(2) var<uniform> u: Params;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * 256u + lid;
  let r = u.rowBase + wid.y;
  if (c >= u.cols || r >= u.rows) { return; }
  O[r * u.ldo + u.col0 + c] = S[r * u.cols + c];
}`,
  };
}

/** Most sources one concat dispatch binds (well inside the 8 storage bindings WebGPU guarantees). */
export const CONCAT_SOURCES = 4;

/**
 * The output viewed as [outer, ctot, inner]: element (o, c, i) comes from source k when
 * start_k <= c < start_k + len_k (source k is contiguous [outer, len_k, inner]); elements no
 * source covers are zero, or keep the output's current bits with `keep`.
 */
export function concatSpec(dtype: DType, sources: number, keep: boolean): KernelSpec {
  const fields: UniformField[] = [
    { name: 'n', type: 'u32' },
    { name: 'inner', type: 'u32' },
    { name: 'ctot', type: 'u32' },
  ];
  const bindings: BindingKind[] = [];
  const decls: string[] = [];
  const picks: string[] = [];
  for (let k = 0; k < sources; k++) {
    fields.push({ name: `start${k}`, type: 'u32' }, { name: `len${k}`, type: 'u32' });
    decls.push(`@group(0) @binding(${k}) var<storage, read> S${k}: array<u32>;`);
    bindings.push('read');
    picks.push(`if (c >= u.start${k} && c < u.start${k} + u.len${k}) { ${put(dtype, readBits(dtype, `S${k}`, `(o * u.len${k} + c - u.start${k}) * u.inner + i`))} }`);
  }
  decls.push(`@group(0) @binding(${sources}) var<storage, read_write> O: array<u32>;`);
  bindings.push('read_write');
  const element = `let i = j % u.inner; let c = (j / u.inner) % u.ctot; let o = j / (u.inner * u.ctot);
    ${keep ? '' : put(dtype, '0u')}
    ${picks.join('\n    ')}`;
  const words = perWord(dtype) === 1 ? 'u.n' : '(u.n + 1u) / 2u';
  return {
    name: 'concat_copy',
    variant: `${dtype}:${sources}:${keep ? 'keep' : 'zero'}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${decls.join('\n')}
struct Params { ${fields.map((f) => `${f.name}: ${f.type},`).join(' ')} }
@group(0) @binding(${sources + 1}) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = gid(wid, nwg, lid, 256u);
  if (w >= ${words}) { return; }
  ${wordLoop(dtype, element, keep)}
  O[w] = word;
}`,
  };
}
