// WGSL for the fused 4-bit matmul: a register-tiled product whose weight tiles are decoded from
// packed 4-bit data into workgroup memory, so the dequantized matrix never exists in full.
import { wgslLoad, type KernelSpec } from '@peft-ts/tensor';
import { absmaxWgsl, nibbleShift, Q4_VALUE_WGSL } from './decode-wgsl.js';
import { WGSL_FLOAT_BITS } from './float-bits.js';

export type ActivationDType = 'f32' | 'f16' | 'bf16';

/** Output tile (16*tm rows by 16*tn columns, 256 invocations of tm x tn each) and reduction step. */
export interface Tile4bit {
  tm: number;
  tn: number;
  bk: number;
}

export const TILE_SMALL: Tile4bit = { tm: 4, tn: 4, bk: 32 };
export const TILE_LARGE: Tile4bit = { tm: 8, tn: 8, bk: 32 };

/** Everything that changes the WGSL of a 4-bit matmul. */
export interface Matmul4bitVariant {
  /**
   * true: C[m, n] = sum_k A[m, k] W[n, k] (the forward product with W^T). false: C[m, k] =
   * sum_n A[m, n] W[n, k] (the input gradient).
   */
  transW: boolean;
  a: ActivationDType;
  doubleQuant: boolean;
  /** The weight's row length is a multiple of 8: every packed word lies in one row and one block. */
  aligned: boolean;
  bias: ActivationDType | null;
  /** f16 compute: operand tiles rounded to f16 (needs shader-f16); products accumulate in f32. */
  f16: boolean;
  tile: Tile4bit;
}

export function variantKey(v: Matmul4bitVariant): string {
  return [
    v.transW ? 'wt' : 'w',
    v.a,
    v.doubleQuant ? 'dq' : 'plain',
    v.aligned ? 'al' : 'un',
    `bias-${v.bias ?? 'none'}`,
    v.f16 ? 'f16' : 'f32',
    `${v.tile.tm}x${v.tile.tn}x${v.tile.bk}`,
  ].join('.');
}

/** Workgroup memory a tile configuration needs, in bytes. */
export function tileBytes(tile: Tile4bit, f16: boolean): number {
  return tile.bk * 16 * (tile.tm + tile.tn) * (f16 ? 2 : 4) + 16 * 4;
}

/**
 * Uniforms: M rows, N output columns, K reduction length; KW and WR the weight's row length and
 * row count; aOff/cOff element offsets of A and C in their bindings; bshift log2(blocksize);
 * codeBase the code table; offset the double-quant offset's f32 bits; biasOff the bias offset.
 */
export const MATMUL_4BIT_UNIFORMS = ['M', 'N', 'K', 'KW', 'WR', 'aOff', 'cOff', 'bshift', 'codeBase', 'offset', 'biasOff'].map((name) => ({
  name,
  type: 'u32' as const,
}));

function decls(v: Matmul4bitVariant): { text: string; bindings: KernelSpec['bindings'] } {
  const names: [string, string][] = [
    ['A', v.a === 'f32' ? 'f32' : 'u32'],
    ['P', 'u32'],
    ['S', 'u32'],
  ];
  if (v.doubleQuant) names.push(['NST', 'u32']);
  names.push(['T', 'u32']);
  if (v.bias) names.push(['BIAS', v.bias === 'f32' ? 'f32' : 'u32']);
  const lines = names.map(([name, type], i) => `@group(0) @binding(${i}) var<storage, read> ${name}: array<${type}>;`);
  lines.push(`@group(0) @binding(${names.length}) var<storage, read_write> C: array<f32>;`);
  lines.push(`struct Params { ${MATMUL_4BIT_UNIFORMS.map((f) => `${f.name}: u32,`).join(' ')} }`);
  lines.push(`@group(0) @binding(${names.length + 1}) var<uniform> u: Params;`);
  return { text: lines.join('\n'), bindings: [...names.map(() => 'read' as const), 'read_write' as const] };
}

/** Statements decoding the 8 weights of one group into `w0..w7` (f32), zero outside the weight. */
function decodeGroup(v: Matmul4bitVariant): string {
  const zeros = Array.from({ length: 8 }, (_, t) => `var w${t} = 0.0;`).join(' ');
  if (v.aligned) {
    const values = Array.from({ length: 8 }, (_, t) => `w${t} = bitcast<f32>(q4_value(sCode[(word >> ${nibbleShift(t)}u) & 0xfu], am));`).join('\n      ');
    return `${zeros}
    if (wr < u.WR && wc < u.KW) {
      let f = wr * u.KW + wc;
      let word = P[f >> 3u];
      let am = q4_absmax(f >> u.bshift);
      ${values}
    }`;
  }
  const values = Array.from(
    { length: 8 },
    (_, t) => `if (wr < u.WR && wc + ${t}u < u.KW) {
      let f = wr * u.KW + wc + ${t}u;
      let byte = (P[f >> 3u] >> (((f >> 1u) & 3u) * 8u)) & 0xffu;
      let nib = select(byte & 0xfu, byte >> 4u, (f & 1u) == 0u);
      w${t} = bitcast<f32>(q4_value(sCode[nib], q4_absmax(f >> u.bshift)));
    }`,
  ).join('\n    ');
  return `${zeros}
    ${values}`;
}

/**
 * The fused kernel. Each workgroup computes a (16 tm) x (16 tn) tile of C; per step of bk along
 * the reduction it stages A (rows of the activations) and the decoded weights in workgroup
 * memory. Bindings: A, P (packed), S (absmax or qabsmax), NST (double quant), T (code tables),
 * BIAS (optional), C (f32 output).
 */
export function matmul4bitSpec(v: Matmul4bitVariant): KernelSpec {
  const { tm, tn, bk } = v.tile;
  const BM = 16 * tm;
  const BN = 16 * tn;
  const store = v.f16 ? 'f16' : 'f32';
  const { text, bindings } = decls(v);
  const aLoad = wgslLoad(v.a, 'A', 'u.aOff + m * u.K + k');
  const groups = (BN * bk) / 8;
  // Forward: a group is 8 consecutive weights along a row (the reduction). Gradient: 8 along a
  // row too, which there is the output dimension.
  const groupPlace = v.transW
    ? `let j = g / ${bk / 8}u; let kk = (g % ${bk / 8}u) * 8u; let wr = n0 + j; let wc = k0 + kk;`
    : `let kk = g / ${BN / 8}u; let j = (g % ${BN / 8}u) * 8u; let wr = k0 + kk; let wc = n0 + j;`;
  const groupStore = Array.from({ length: 8 }, (_, t) =>
    v.transW ? `sB[(kk + ${t}u) * ${BN}u + j] = ${store}(w${t});` : `sB[kk * ${BN}u + j + ${t}u] = ${store}(w${t});`,
  ).join(' ');
  const accDecl = [];
  const inner = [];
  const stores = [];
  for (let i = 0; i < tm; i++) inner.push(`let a${i} = f32(sA[kk * ${BM}u + ty + ${16 * i}u]);`);
  for (let j = 0; j < tn; j++) inner.push(`let b${j} = f32(sB[kk * ${BN}u + tx + ${16 * j}u]);`);
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      accDecl.push(`var c${i}_${j} = 0.0;`);
      inner.push(`c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`);
    }
  }
  for (let j = 0; j < tn; j++) {
    const bias = v.bias ? wgslLoad(v.bias, 'BIAS', `u.biasOff + col${j}`) : '0.0';
    stores.push(`let col${j} = n0 + tx + ${16 * j}u;`);
    stores.push(`if (col${j} < u.N) { let bv = ${bias};`);
    for (let i = 0; i < tm; i++) stores.push(`  if (m0 + ty + ${16 * i}u < u.M) { C[u.cOff + (m0 + ty + ${16 * i}u) * u.N + col${j}] = c${i}_${j} + bv; }`);
    stores.push('}');
  }
  return {
    name: 'nf4_matmul',
    variant: variantKey(v),
    bindings,
    uniforms: MATMUL_4BIT_UNIFORMS,
    features: v.f16 ? ['shader-f16'] : [],
    wgsl: /* wgsl */ `${v.f16 ? 'enable f16;\n' : ''}${text}
${WGSL_FLOAT_BITS}
${absmaxWgsl(v.doubleQuant)}
${Q4_VALUE_WGSL}
var<workgroup> sA: array<${store}, ${BM * bk}>;
var<workgroup> sB: array<${store}, ${BN * bk}>;
var<workgroup> sCode: array<u32, 16>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let n0 = wid.x * ${BN}u;
  let m0 = wid.y * ${BM}u;
  if (lid < 16u) { sCode[lid] = T[u.codeBase + lid]; }
  ${accDecl.join(' ')}
  workgroupBarrier();
  for (var k0 = 0u; k0 < u.K; k0 = k0 + ${bk}u) {
    for (var e = lid; e < ${BM * bk}u; e = e + 256u) {
      let r = e / ${bk}u;
      let c = e % ${bk}u;
      let m = m0 + r;
      let k = k0 + c;
      var x = 0.0;
      if (m < u.M && k < u.K) { x = ${aLoad}; }
      sA[c * ${BM}u + r] = ${store}(x);
    }
    for (var g = lid; g < ${groups}u; g = g + 256u) {
      ${groupPlace}
      ${decodeGroup(v)}
      ${groupStore}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk = kk + 1u) {
      ${inner.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${stores.join('\n  ')}
}`,
  };
}

/** Everything that changes the WGSL of the few-rows kernel. */
export interface Gemv4bitVariant {
  a: ActivationDType;
  doubleQuant: boolean;
  bias: ActivationDType | null;
  f16: boolean;
  /** Rows the kernel is unrolled for (1, 2, 4 or 8); M may be smaller. */
  rows: number;
}

/** Output features per workgroup of the few-rows kernel: 8 groups of 32 invocations, one feature each. */
export const GEMV_FEATURES = 8;

/**
 * C = A W^T for a few rows of A (token-by-token generation): each group of 32 invocations walks
 * one weight row a packed word at a time, decoding 8 weights per word, and the partial sums meet
 * in workgroup memory. Weight rows must be whole words (in-features a multiple of 8). Bindings
 * and uniforms as the tiled kernel.
 */
export function gemv4bitSpec(v: Gemv4bitVariant): KernelSpec {
  const { text, bindings } = decls({ transW: true, a: v.a, doubleQuant: v.doubleQuant, aligned: true, bias: v.bias, f16: v.f16, tile: TILE_SMALL });
  const round = (e: string) => (v.f16 ? `f32(f16(${e}))` : e);
  const weights = Array.from({ length: 8 }, (_, t) => `let w${t} = ${round(`bitcast<f32>(q4_value(sCode[(word >> ${nibbleShift(t)}u) & 0xfu], am))`)};`).join('\n      ');
  const rows = [];
  for (let m = 0; m < v.rows; m++) {
    const terms = Array.from({ length: 8 }, (_, t) => `acc${m} = fma(${round(wgslLoad(v.a, 'A', `xb + ${m}u * u.K + ${t}u`))}, w${t}, acc${m});`).join(' ');
    rows.push(`if (${m}u < u.M) { ${terms} }`);
  }
  const accDecl = Array.from({ length: v.rows }, (_, m) => `var acc${m} = 0.0;`).join(' ');
  const toShared = Array.from({ length: v.rows }, (_, m) => `sRed[${m * 256}u + lid] = acc${m};`).join(' ');
  const reduce = Array.from({ length: v.rows }, (_, m) => `sRed[${m * 256}u + lid] = sRed[${m * 256}u + lid] + sRed[${m * 256}u + lid + s];`).join(' ');
  const bias = v.bias ? wgslLoad(v.bias, 'BIAS', 'u.biasOff + n') : '0.0';
  const stores = Array.from({ length: v.rows }, (_, m) => `if (${m}u < u.M) { C[u.cOff + ${m}u * u.N + n] = sRed[${m * 256}u + lid] + bv; }`).join(' ');
  return {
    name: 'nf4_gemv',
    variant: `${v.a}.${v.doubleQuant ? 'dq' : 'plain'}.bias-${v.bias ?? 'none'}.${v.f16 ? 'f16' : 'f32'}.r${v.rows}`,
    bindings,
    uniforms: MATMUL_4BIT_UNIFORMS,
    features: v.f16 ? ['shader-f16'] : [],
    wgsl: /* wgsl */ `${v.f16 ? 'enable f16;\n' : ''}${text}
${WGSL_FLOAT_BITS}
${absmaxWgsl(v.doubleQuant)}
${Q4_VALUE_WGSL}
var<workgroup> sCode: array<u32, 16>;
var<workgroup> sRed: array<f32, ${256 * v.rows}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 32u;
  let n = wid.x * ${GEMV_FEATURES}u + lid / 32u;
  if (lid < 16u) { sCode[lid] = T[u.codeBase + lid]; }
  workgroupBarrier();
  ${accDecl}
  if (n < u.N) {
    for (var w = lane; w < u.K / 8u; w = w + 32u) {
      let f = n * u.K + w * 8u;
      let word = P[f >> 3u];
      let am = q4_absmax(f >> u.bshift);
      ${weights}
      let xb = u.aOff + w * 8u;
      ${rows.join('\n      ')}
    }
  }
  ${toShared}
  workgroupBarrier();
  for (var s = 16u; s > 0u; s = s >> 1u) {
    if (lane < s) { ${reduce} }
    workgroupBarrier();
  }
  if (lane == 0u && n < u.N) {
    let bv = ${bias};
    ${stores}
  }
}`,
  };
}
