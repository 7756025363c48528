// WGSL generators for matmul: a simple kernel (fallback and reference for the others), a
// register-tiled kernel staging tiles in workgroup memory, and a subgroup-matrix kernel.
import { wgslLoad, type DType } from '../../core/dtype.js';
import type { KernelSpec, UniformField } from '../../core/kernel.js';

/** Batch dims the kernels decode from the workgroup z index (output rank <= 6 with M, N). */
export const MAX_BATCH_RANK = 4;

/** Floating-point storage an operand can have. */
export type FloatDType = 'f32' | 'f16' | 'bf16';

/**
 * Uniforms shared by every matmul kernel. Element (m, k) of A sits at
 * `aOff + batchA + (transA ? k * lda + m : m * lda + k)`, likewise for B; C is row-major with
 * row stride ldc. Batch index z = wid.z + zBase decodes over d0..d3 into per-operand offsets.
 */
export const GEMM_UNIFORMS: readonly UniformField[] = [
  'M',
  'N',
  'K',
  'lda',
  'ldb',
  'ldc',
  'aOff',
  'bOff',
  'cOff',
  'biasOff',
  'zBase',
  'cBatch',
  ...Array.from({ length: MAX_BATCH_RANK }, (_, i) => `d${i}`),
  ...Array.from({ length: MAX_BATCH_RANK }, (_, i) => `sa${i}`),
  ...Array.from({ length: MAX_BATCH_RANK }, (_, i) => `sb${i}`),
].map((name) => ({ name, type: 'u32' as const }));

/** How one input operand is bound and read. */
export interface OperandRead {
  dtype: FloatDType;
  /** Stored transposed: A as [K, M], B as [N, K]. */
  trans: boolean;
  /** Whole-vector loads along the contiguous dim (4 f32 or 8 16-bit values per load). */
  vec: boolean;
}

/** Everything that changes the WGSL of a matmul kernel besides its tile configuration. */
export interface GemmVariant {
  a: OperandRead;
  b: OperandRead;
  bias: FloatDType | null;
  out: 'f32' | 'f16';
  /** vec4 stores of f32 output (N, ldc and offsets multiples of 4). */
  outVec: boolean;
  /** `enable f16;`: f16 operands are read as native f16, f16 output is written natively. */
  f16: boolean;
  /** Add to the output instead of overwriting it (the later chunks of a split reduction). */
  accumulate: boolean;
}

function variantKey(v: GemmVariant): string {
  const op = (o: OperandRead) => `${o.dtype}${o.trans ? 't' : 'n'}${o.vec ? 'v' : 's'}`;
  return `${op(v.a)}.${op(v.b)}.bias-${v.bias ?? 'none'}.out-${v.out}${v.outVec ? 'v' : 's'}.${v.f16 ? 'f16' : 'nof16'}${v.accumulate ? '.acc' : ''}`;
}

const uniformBlock = (binding: number): string =>
  `struct Params { ${GEMM_UNIFORMS.map((f) => `${f.name}: ${f.type},`).join(' ')} }\n@group(0) @binding(${binding}) var<uniform> u: Params;`;

/** Elements one vector load brings: 4 f32 (vec4<f32>) or 8 16-bit values (vec4<u32>). */
export function vectorWidth(dtype: FloatDType): number {
  return dtype === 'f32' ? 4 : 8;
}

function operandElemType(o: OperandRead, f16: boolean): string {
  if (o.vec) return o.dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>';
  if (o.dtype === 'f32') return 'f32';
  if (o.dtype === 'f16' && f16) return 'f16';
  return 'u32';
}

function storageDecl(name: string, binding: number, access: 'read' | 'read_write', elem: string): string {
  return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${elem}>;`;
}

/** WGSL expression: element `idx` of a scalar-bound operand, converted to `to`. */
function scalarLoad(name: string, dtype: FloatDType, f16: boolean, idx: string, to: 'f32' | 'f16'): string {
  if (dtype === 'f16' && f16) return to === 'f16' ? `${name}[${idx}]` : `f32(${name}[${idx}])`;
  const v = wgslLoad(dtype, name, idx);
  return to === 'f32' ? v : `f16(${v})`;
}

/** The values of a vector register `r` (as loaded by a vec operand), converted to `to`. */
function vectorValues(dtype: FloatDType, f16: boolean, r: string, to: 'f32' | 'f16'): string[] {
  if (dtype === 'f32') return [0, 1, 2, 3].map((i) => (to === 'f32' ? `${r}[${i}]` : `f16(${r}[${i}])`));
  const out: string[] = [];
  for (let w = 0; w < 4; w++) {
    for (let h = 0; h < 2; h++) {
      if (dtype === 'f16' && f16) {
        const v = `bitcast<vec2<f16>>(${r}[${w}])[${h}]`;
        out.push(to === 'f16' ? v : `f32(${v})`);
      } else {
        const v = dtype === 'f16' ? `unpack2x16float(${r}[${w}])[${h}]` : h === 0 ? `bitcast<f32>(${r}[${w}] << 16u)` : `bitcast<f32>(${r}[${w}] & 0xffff0000u)`;
        out.push(to === 'f32' ? v : `f16(${v})`);
      }
    }
  }
  return out;
}

/** Decodes the batch index into base offsets aBase, bBase, cBase (WGSL statements). */
function batchDecode(): string {
  const lines = ['var zr = wid.z + u.zBase;', 'var aBase = u.aOff;', 'var bBase = u.bOff;', 'let cBase = u.cOff + zr * u.cBatch;'];
  for (let i = MAX_BATCH_RANK - 1; i >= 0; i--) {
    lines.push(`{ let c = zr % u.d${i}; zr = zr / u.d${i}; aBase += c * u.sa${i}; bBase += c * u.sb${i}; }`);
  }
  return lines.join('\n  ');
}

function biasDecl(v: GemmVariant, binding: number): string {
  if (!v.bias) return '';
  return storageDecl('BIAS', binding, 'read', v.bias === 'f16' && v.f16 ? 'f16' : v.bias === 'f32' ? 'f32' : 'u32');
}

function biasValue(v: GemmVariant, nExpr: string): string {
  if (!v.bias) return '0.0';
  return scalarLoad('BIAS', v.bias, v.f16, `u.biasOff + ${nExpr}`, 'f32');
}

function outDecl(v: GemmVariant, binding: number): string {
  const elem = v.out === 'f16' ? 'f16' : v.outVec ? 'vec4<f32>' : 'f32';
  return storageDecl('C', binding, 'read_write', elem);
}

function header(v: GemmVariant, extra = ''): string {
  const enables = v.f16 || v.out === 'f16' ? 'enable f16;\n' : '';
  return `${enables}${extra}`;
}

function bindingList(v: GemmVariant): KernelSpec['bindings'] {
  return v.bias ? ['read', 'read', 'read', 'read_write'] : ['read', 'read', 'read_write'];
}

function declarations(v: GemmVariant): string {
  const outBinding = v.bias ? 3 : 2;
  return [
    storageDecl('A', 0, 'read', operandElemType(v.a, v.f16)),
    storageDecl('B', 1, 'read', operandElemType(v.b, v.f16)),
    biasDecl(v, 2),
    outDecl(v, outBinding),
    uniformBlock(outBinding + 1),
  ]
    .filter((s) => s !== '')
    .join('\n');
}

/** Scalar store of an f32 value `val` at output element `idx` (added to it when accumulating). */
function storeScalar(v: GemmVariant, idx: string, val: string): string {
  if (v.out === 'f16') return v.accumulate ? `C[${idx}] = f16(f32(C[${idx}]) + ${val});` : `C[${idx}] = f16(${val});`;
  return v.accumulate ? `C[${idx}] = C[${idx}] + ${val};` : `C[${idx}] = ${val};`;
}

// ---- kernel 1: simple ---------------------------------------------------------------------

/** One invocation per output element, a plain loop over K. Reads every dtype through wgslLoad. */
export function naiveGemmSpec(variant: GemmVariant): KernelSpec {
  const v: GemmVariant = { ...variant, a: { ...variant.a, vec: false }, b: { ...variant.b, vec: false }, outVec: false };
  const aIdx = v.a.trans ? 'aBase + k * u.lda + m' : 'aBase + m * u.lda + k';
  const bIdx = v.b.trans ? 'bBase + n * u.ldb + k' : 'bBase + k * u.ldb + n';
  return {
    name: 'matmul_naive',
    variant: variantKey(v),
    bindings: bindingList(v),
    uniforms: GEMM_UNIFORMS,
    features: v.f16 || v.out === 'f16' ? ['shader-f16'] : [],
    wgsl: /* wgsl */ `${header(v)}
${declarations(v)}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let n = wid.x * 16u + lid.x;
  let m = wid.y * 16u + lid.y;
  if (m >= u.M || n >= u.N) { return; }
  ${batchDecode()}
  var acc = 0.0;
  for (var k = 0u; k < u.K; k++) {
    acc = fma(${scalarLoad('A', v.a.dtype, v.f16, aIdx, 'f32')}, ${scalarLoad('B', v.b.dtype, v.f16, bIdx, 'f32')}, acc);
  }
  ${storeScalar(v, 'cBase + m * u.ldc + n', `acc + ${biasValue(v, 'n')}`)}
}`,
  };
}

// ---- shared tile loading ------------------------------------------------------------------

/**
 * Loads of one operand tile into registers and their stores into workgroup memory. The tile is
 * `rows` x `cols` in the operand's storage orientation (cols = the contiguous dim); each
 * invocation moves whole groups of `width` contiguous elements.
 */
interface TileIo {
  decls: string;
  load: string;
  store: string;
}

interface TileGeometry {
  /** Binding name (A or B) and how it is read. */
  name: string;
  read: OperandRead;
  f16: boolean;
  rows: number;
  cols: number;
  threads: number;
  /** WGSL expressions: base element offset, leading dim, tile origin, limits. */
  base: string;
  ld: string;
  row0: string;
  col0: string;
  rowLimit: string;
  colLimit: string;
  /** Register element type once loaded: f32 for the tiled kernel, the matrix component type otherwise. */
  to: 'f32' | 'f16';
  /** WGSL statement storing `value` at tile position (r, c) (WGSL u32 expressions). */
  put: (r: string, c: string, value: string) => string;
  /** WGSL statement storing four values at (r, c..c+3) at once, when the layout allows it. */
  put4?: (r: string, c: string, values: string) => string;
}

function tileIo(g: TileGeometry, prefix: string): TileIo {
  const width = g.read.vec ? vectorWidth(g.read.dtype) : 4;
  if (g.cols % width !== 0) throw new Error(`matmul kernel: tile of ${g.cols} columns is not a multiple of ${width}`);
  const perRow = g.cols / width;
  const total = g.rows * perRow;
  const slots = Math.ceil(total / g.threads);
  const guarded = total % g.threads !== 0;
  const regType = g.read.vec ? operandElemType(g.read, g.f16) : g.to === 'f32' ? 'vec4<f32>' : 'vec4<f16>';
  const decls: string[] = [];
  const load: string[] = [];
  const store: string[] = [];
  const zero = `${regType}()`;
  for (let s = 0; s < slots; s++) {
    const reg = `${prefix}${s}`;
    decls.push(`var ${reg}: ${regType};`);
    const where = `let vid = lid + ${s * g.threads}u; let r = vid / ${perRow}u; let c = (vid % ${perRow}u) * ${width}u;`;
    const live = guarded ? `vid < ${total}u && ` : '';
    if (g.read.vec) {
      const shift = width === 4 ? 2 : 3;
      load.push(
        `{ ${where} let gr = ${g.row0} + r; let gc = ${g.col0} + c; ${reg} = ${zero};` +
          ` if (${live}gr < ${g.rowLimit} && gc < ${g.colLimit}) { ${reg} = ${g.name}[(${g.base} + gr * ${g.ld} + gc) >> ${shift}u]; } }`,
      );
    } else {
      // Four contiguous elements, each checked on its own: no alignment needed.
      const parts = [0, 1, 2, 3].map(
        (e) =>
          `if (${live}gr < ${g.rowLimit} && gc + ${e}u < ${g.colLimit}) { ${reg}[${e}] = ${scalarLoad(g.name, g.read.dtype, g.f16, `${g.base} + gr * ${g.ld} + gc + ${e}u`, g.to)}; }`,
      );
      load.push(`{ ${where} let gr = ${g.row0} + r; let gc = ${g.col0} + c; ${reg} = ${zero}; ${parts.join(' ')} }`);
    }
    const values = g.read.vec ? vectorValues(g.read.dtype, g.f16, reg, g.to) : [0, 1, 2, 3].map((e) => `${reg}[${e}]`);
    const puts: string[] = [];
    for (let e0 = 0; e0 < values.length; e0 += 4) {
      const four = values.slice(e0, e0 + 4);
      if (g.put4) {
        const vec = g.read.vec && g.read.dtype === 'f32' && g.to === 'f32' ? reg : `vec4<${g.to}>(${four.join(', ')})`;
        puts.push(g.put4('r', `c + ${e0}u`, vec));
      } else {
        four.forEach((val, e) => puts.push(g.put('r', `c + ${e0 + e}u`, val)));
      }
    }
    store.push(`{ ${where} ${guarded ? `if (vid < ${total}u) { ${puts.join(' ')} }` : puts.join(' ')} }`);
  }
  return { decls: decls.join('\n  '), load: load.join('\n    '), store: store.join('\n    ') };
}

// ---- kernel 2: register-tiled --------------------------------------------------------------

/** Output tile of the register-tiled kernel; 256 invocations, each computing tm x tn outputs. */
export interface TileConfig {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

export const TILE_SMALL: TileConfig = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
export const TILE_LARGE: TileConfig = { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 };

/**
 * Register-tiled kernel: 16x16 invocations; each owns tm x tn outputs as (tm/4) x (tn/4) blocks of
 * 4x4 spaced bm/(tm/4) rows and bn/(tn/4) columns apart, so workgroup-memory reads are vec4 and
 * conflict-free. Tiles are staged k-major (As[k][m], Bs[k][n], rows padded by 4) and the next
 * tile is fetched into registers while the current one is multiplied. Computes in f32; with
 * `f16` the f16 operands are read natively.
 */
export function tiledGemmSpec(v: GemmVariant, t: TileConfig, constantTripCount = true): KernelSpec {
  const threads = 256;
  const gm = t.tm / 4;
  const gn = t.tn / 4;
  if (t.bm / 16 !== t.tm || t.bn / 16 !== t.tn || t.tm % 4 !== 0 || t.tn % 4 !== 0) throw new Error('matmul: bad tile config');
  const sa = t.bm + 4;
  const sb = t.bn + 4;
  const aGeom: TileGeometry = {
    name: 'A',
    read: v.a,
    f16: v.f16,
    rows: v.a.trans ? t.bk : t.bm,
    cols: v.a.trans ? t.bm : t.bk,
    threads,
    base: 'aBase',
    ld: 'u.lda',
    row0: v.a.trans ? 'k0' : 'm0',
    col0: v.a.trans ? 'm0' : 'k0',
    rowLimit: v.a.trans ? 'u.K' : 'u.M',
    colLimit: v.a.trans ? 'u.M' : 'u.K',
    to: 'f32',
    // As is k-major: element (m, k) at k * sa + m.
    put: (r, c, val) => (v.a.trans ? `AS[((${r}) * ${sa}u + ${c}) >> 2u][(${c}) & 3u] = ${val};` : `AS[((${c}) * ${sa}u + ${r}) >> 2u][(${r}) & 3u] = ${val};`),
    ...(v.a.trans ? { put4: (r: string, c: string, val: string) => `AS[((${r}) * ${sa}u + ${c}) >> 2u] = ${val};` } : {}),
  };
  const bGeom: TileGeometry = {
    name: 'B',
    read: v.b,
    f16: v.f16,
    rows: v.b.trans ? t.bn : t.bk,
    cols: v.b.trans ? t.bk : t.bn,
    threads,
    base: 'bBase',
    ld: 'u.ldb',
    row0: v.b.trans ? 'n0' : 'k0',
    col0: v.b.trans ? 'k0' : 'n0',
    rowLimit: v.b.trans ? 'u.N' : 'u.K',
    colLimit: v.b.trans ? 'u.K' : 'u.N',
    to: 'f32',
    // Bs is k-major: element (k, n) at k * sb + n.
    put: (r, c, val) => (v.b.trans ? `BS[((${c}) * ${sb}u + ${r}) >> 2u][(${r}) & 3u] = ${val};` : `BS[((${r}) * ${sb}u + ${c}) >> 2u][(${c}) & 3u] = ${val};`),
    ...(v.b.trans ? {} : { put4: (r: string, c: string, val: string) => `BS[((${r}) * ${sb}u + ${c}) >> 2u] = ${val};` }),
  };
  const aIo = tileIo(aGeom, 'ra');
  const bIo = tileIo(bGeom, 'rb');

  const accDecls: string[] = [];
  for (let r = 0; r < t.tm; r++) for (let h = 0; h < gn; h++) accDecls.push(`var acc${r}_${h} = vec4<f32>();`);
  const innerLines: string[] = [];
  for (let g = 0; g < gm; g++) innerLines.push(`let a${g} = AS[k * ${sa / 4}u + ty + ${(g * t.bm) / gm / 4}u];`);
  for (let h = 0; h < gn; h++) innerLines.push(`let b${h} = BS[k * ${sb / 4}u + tx + ${(h * t.bn) / gn / 4}u];`);
  for (let g = 0; g < gm; g++) {
    for (let i = 0; i < 4; i++) {
      for (let h = 0; h < gn; h++) {
        const r = g * 4 + i;
        innerLines.push(`acc${r}_${h} = fma(vec4<f32>(a${g}[${i}]), b${h}, acc${r}_${h});`);
      }
    }
  }
  // A constant trip count lets a GPU compiler unroll the loop; LLVM on a software adapter
  // unrolls it too and then takes three times longer to compile, so there the last tile's
  // actual depth bounds it instead (the padded zeros past K add nothing).
  const kEnd = constantTripCount ? `${t.bk}u` : `min(${t.bk}u, u.K - t * ${t.bk}u)`;
  const inner = [`for (var k = 0u; k < ${kEnd}; k++) {\n      ${innerLines.join('\n      ')}\n    }`];

  const epilogue: string[] = [];
  for (let h = 0; h < gn; h++) {
    const nExpr = `n0 + tx * 4u + ${(h * t.bn) / gn}u`;
    epilogue.push(`let nc${h} = ${nExpr};`);
    const parts = [0, 1, 2, 3].map((e) => `select(0.0, ${biasValue(v, `nc${h} + ${e}u`)}, nc${h} + ${e}u < u.N)`);
    epilogue.push(v.bias ? `let bias${h} = vec4<f32>(${parts.join(', ')});` : `let bias${h} = vec4<f32>();`);
  }
  for (let g = 0; g < gm; g++) {
    for (let i = 0; i < 4; i++) {
      const r = g * 4 + i;
      const body: string[] = [];
      for (let h = 0; h < gn; h++) {
        if (v.outVec) {
          const at = `C[(cBase + m * u.ldc + nc${h}) >> 2u]`;
          body.push(`if (nc${h} < u.N) { ${at} = ${v.accumulate ? `${at} + ` : ''}acc${r}_${h} + bias${h}; }`);
        } else {
          for (let e = 0; e < 4; e++) {
            body.push(`if (nc${h} + ${e}u < u.N) { ${storeScalar(v, `cBase + m * u.ldc + nc${h} + ${e}u`, `acc${r}_${h}[${e}] + bias${h}[${e}]`)} }`);
          }
        }
      }
      epilogue.push(`{ let m = m0 + ty * 4u + ${(g * t.bm) / gm + i}u; if (m < u.M) { ${body.join(' ')} } }`);
    }
  }

  return {
    name: 'matmul_tiled',
    variant: `${variantKey(v)}.${t.bm}x${t.bn}x${t.bk}.${t.tm}x${t.tn}${constantTripCount ? '' : '.dynk'}`,
    bindings: bindingList(v),
    uniforms: GEMM_UNIFORMS,
    features: v.f16 || v.out === 'f16' ? ['shader-f16'] : [],
    wgsl: /* wgsl */ `${header(v)}
${declarations(v)}
var<workgroup> AS: array<vec4<f32>, ${(t.bk * sa) / 4}>;
var<workgroup> BS: array<vec4<f32>, ${(t.bk * sb) / 4}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let n0 = wid.x * ${t.bn}u;
  let m0 = wid.y * ${t.bm}u;
  ${batchDecode()}
  ${accDecls.join('\n  ')}
  ${aIo.decls}
  ${bIo.decls}
  let tiles = (u.K + ${t.bk - 1}u) / ${t.bk}u;
  {
    let k0 = 0u;
    ${aIo.load}
    ${bIo.load}
  }
  for (var t = 0u; t < tiles; t++) {
    ${aIo.store}
    ${bIo.store}
    workgroupBarrier();
    if (t + 1u < tiles) {
      let k0 = (t + 1u) * ${t.bk}u;
      ${aIo.load}
      ${bIo.load}
    }
    ${inner.join('\n    ')}
    workgroupBarrier();
  }
  ${epilogue.join('\n  ')}
}`,
  };
}

// ---- kernel 2b: subgroup broadcast (CPU-style adapters) ------------------------------------

/** Output rows x columns-per-lane of the subgroup-broadcast kernel; lanes = the fixed subgroup size. */
export interface BroadcastTile {
  rm: number;
  rn: number;
  lanes: number;
}

/** 16 rows x 2 columns per lane: the fewest loads per product that still fits the registers. */
export const BROADCAST_TILE: Omit<BroadcastTile, 'lanes'> = { rm: 16, rn: 2 };

/**
 * For adapters that run invocations as SIMD lanes of a CPU (a software Vulkan driver): there,
 * every storage-buffer load is issued lane by lane and workgroup memory is no faster than any
 * other, so what counts is how many loads each product needs. One workgroup is one subgroup of
 * `lanes` invocations that owns rm rows x (rn * lanes) columns of C. Per step of `lanes` values
 * of k, each lane loads one element of each of the rm rows of A (all different) and the
 * subgroup broadcasts them lane by lane, so A costs rm loads instead of rm * lanes; each lane
 * loads its own rn columns of B. Every output still sums k in order with fma, as the other
 * kernels do. The last partial step of k reads zeros past K.
 */
export function broadcastGemmSpec(variant: GemmVariant, t: BroadcastTile): KernelSpec {
  const v: GemmVariant = { ...variant, a: { ...variant.a, vec: false }, b: { ...variant.b, vec: false }, outVec: false };
  const S = t.lanes;
  const aAt = (m: string, k: string): string => scalarLoad('A', v.a.dtype, v.f16, v.a.trans ? `aBase + (${k}) * u.lda + ${m}` : `aBase + (${m}) * u.lda + ${k}`, 'f32');
  const bAt = (k: string, n: string): string => scalarLoad('B', v.b.dtype, v.f16, v.b.trans ? `bBase + (${n}) * u.ldb + ${k}` : `bBase + (${k}) * u.ldb + ${n}`, 'f32');
  const step = (guarded: boolean): string => {
    const lines: string[] = [];
    // Rows past M and columns past N read clamped indices; only their own (unstored) outputs see them.
    for (let r = 0; r < t.rm; r++) {
      const load = aAt(`min(m0 + ${r}u, u.M - 1u)`, guarded ? 'min(k0 + lane, u.K - 1u)' : 'k0 + lane');
      lines.push(`let a${r} = ${guarded ? `select(0.0, ${load}, k0 + lane < u.K)` : load};`);
    }
    for (let kk = 0; kk < S; kk++) {
      for (let c = 0; c < t.rn; c++) {
        const load = bAt(guarded ? `min(k0 + ${kk}u, u.K - 1u)` : `k0 + ${kk}u`, `nc${c}`);
        lines.push(`let b${kk}_${c} = ${guarded ? `select(0.0, ${load}, k0 + ${kk}u < u.K)` : load};`);
      }
    }
    for (let kk = 0; kk < S; kk++) {
      for (let r = 0; r < t.rm; r++) {
        lines.push(`{ let av = subgroupBroadcast(a${r}, ${kk}u); ${Array.from({ length: t.rn }, (_, c) => `c${r}_${c} = fma(av, b${kk}_${c}, c${r}_${c});`).join(' ')} }`);
      }
    }
    return lines.join('\n    ');
  };
  const accDecls: string[] = [];
  for (let r = 0; r < t.rm; r++) for (let c = 0; c < t.rn; c++) accDecls.push(`var c${r}_${c} = 0.0;`);
  const cols = Array.from({ length: t.rn }, (_, c) => `let nc${c} = min(n0 + ${c * S}u, u.N - 1u);`);
  const stores: string[] = [];
  for (let c = 0; c < t.rn; c++) {
    const n = `n0 + ${c * S}u`;
    stores.push(`if (${n} < u.N) { let bias${c} = ${biasValue(v, n)}; ${Array.from({ length: t.rm }, (_, r) => `if (m0 + ${r}u < u.M) { ${storeScalar(v, `cBase + (m0 + ${r}u) * u.ldc + ${n}`, `c${r}_${c} + bias${c}`)} }`).join(' ')} }`);
  }
  return {
    name: 'matmul_broadcast',
    variant: `${variantKey(v)}.${t.rm}x${t.rn}x${S}`,
    bindings: bindingList(v),
    uniforms: GEMM_UNIFORMS,
    features: ['subgroups', ...(v.f16 || v.out === 'f16' ? ['shader-f16'] : [])],
    wgsl: /* wgsl */ `${header(v, 'enable subgroups;\n')}
${declarations(v)}
@compute @workgroup_size(${S})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wid.y * ${t.rm}u;
  let n0 = wid.x * ${t.rn * S}u + lane;
  ${batchDecode()}
  ${cols.join('\n  ')}
  ${accDecls.join('\n  ')}
  let kFull = u.K - u.K % ${S}u;
  for (var k0 = 0u; k0 < kFull; k0 += ${S}u) {
    ${step(false)}
  }
  if (kFull < u.K) {
    let k0 = kFull;
    ${step(true)}
  }
  ${stores.join('\n  ')}
}`,
  };
}

// ---- kernel 3: subgroup matrices ------------------------------------------------------------

/** A cooperative-matrix shape the kernel uses (one of the adapter's subgroupMatrixConfigs). */
export interface SubgroupMatrixShape {
  /** Rows of the left and result matrices. */
  m: number;
  /** Columns of the right and result matrices. */
  n: number;
  /** Columns of the left, rows of the right matrix. */
  k: number;
  /** Component type of the left/right matrices; results are f32. */
  component: 'f16' | 'f32';
}

/** Workgroup layout of the subgroup-matrix kernel. */
export interface SubgroupTile {
  /** Subgroups along M and N (the workgroup has wm * wn * subgroupMaxSize invocations). */
  wm: number;
  wn: number;
  /** Result matrices per subgroup along M and N. */
  rm: number;
  rn: number;
  bk: number;
  /** Largest subgroup size the adapter may run the kernel with. */
  subgroupSize: number;
}

export function subgroupTileFor(shape: SubgroupMatrixShape, subgroupSize: number): SubgroupTile {
  let rm = Math.max(1, Math.floor(64 / shape.m));
  const rn = Math.max(1, Math.floor(32 / shape.n));
  while (rm * rn > 16 && rm > 1) rm = Math.floor(rm / 2);
  const bk = Math.max(shape.k, Math.ceil(32 / shape.k) * shape.k);
  return { wm: 2, wn: 4, rm, rn, bk, subgroupSize };
}

export function subgroupTileSize(shape: SubgroupMatrixShape, t: SubgroupTile): { bm: number; bn: number } {
  return { bm: t.wm * t.rm * shape.m, bn: t.wn * t.rn * shape.n };
}

/** Workgroup-memory bytes the subgroup-matrix kernel declares. */
export function subgroupKernelBytes(v: GemmVariant, shape: SubgroupMatrixShape, t: SubgroupTile): number {
  const { bm, bn } = subgroupTileSize(shape, t);
  const es = shape.component === 'f16' ? 2 : 4;
  const pad = 16 / es;
  const aElems = v.a.trans ? t.bk * (bm + pad) : bm * (t.bk + pad);
  const bElems = v.b.trans ? bn * (t.bk + pad) : t.bk * (bn + pad);
  return (aElems + bElems) * es + t.wm * t.wn * shape.m * shape.n * 4;
}

/**
 * Subgroup-matrix kernel: wm x wn subgroups, each accumulating rm x rn result matrices in f32.
 * Operands are converted to the matrix component type while staged in workgroup memory in their
 * storage orientation (rows padded by 16 bytes), so transposes become col_major loads. Results
 * go through a per-subgroup scratch tile so the epilogue can add the bias and clip edges.
 * Subgroups past wm * wn (a device running smaller subgroups than its maximum) only help load.
 */
export function subgroupGemmSpec(variant: GemmVariant, shape: SubgroupMatrixShape, t: SubgroupTile): KernelSpec {
  const v: GemmVariant = { ...variant, outVec: false };
  const nsg = t.wm * t.wn;
  const threads = nsg * t.subgroupSize;
  const { bm, bn } = subgroupTileSize(shape, t);
  const T = shape.component;
  const pad = T === 'f16' ? 8 : 4;
  const sa = v.a.trans ? bm + pad : t.bk + pad;
  const sb = v.b.trans ? t.bk + pad : bn + pad;
  const aElems = v.a.trans ? t.bk * sa : bm * sa;
  const bElems = v.b.trans ? bn * sb : t.bk * sb;
  const cmn = shape.m * shape.n;
  const geom = (which: 'A' | 'B'): TileGeometry => {
    const isA = which === 'A';
    const read = isA ? v.a : v.b;
    const stride = isA ? sa : sb;
    const rowsDim = isA ? (read.trans ? 'k' : 'm') : read.trans ? 'n' : 'k';
    const colsDim = isA ? (read.trans ? 'm' : 'k') : read.trans ? 'k' : 'n';
    const extent = (d: string) => (d === 'k' ? t.bk : d === 'm' ? bm : bn);
    const origin = (d: string) => `${d}0`;
    const limit = (d: string) => `u.${d.toUpperCase()}`;
    const shared = isA ? 'AS' : 'BS';
    return {
      name: which,
      read,
      f16: v.f16,
      rows: extent(rowsDim),
      cols: extent(colsDim),
      threads,
      base: isA ? 'aBase' : 'bBase',
      ld: isA ? 'u.lda' : 'u.ldb',
      row0: origin(rowsDim),
      col0: origin(colsDim),
      rowLimit: limit(rowsDim),
      colLimit: limit(colsDim),
      to: T,
      put: (r, c, val) => `${shared}[(${r}) * ${stride}u + ${c}] = ${val};`,
    };
  };
  const aIo = tileIo(geom('A'), 'ra');
  const bIo = tileIo(geom('B'), 'rb');
  const left = `subgroup_matrix_left<${T}, ${shape.k}, ${shape.m}>`;
  const right = `subgroup_matrix_right<${T}, ${shape.n}, ${shape.k}>`;
  const result = `subgroup_matrix_result<f32, ${shape.n}, ${shape.m}>`;
  const accDecls: string[] = [];
  for (let i = 0; i < t.rm; i++) for (let j = 0; j < t.rn; j++) accDecls.push(`var acc${i}_${j} = ${result}();`);
  const mma: string[] = [];
  for (let kk = 0; kk < t.bk; kk += shape.k) {
    mma.push('{');
    for (let i = 0; i < t.rm; i++) {
      const off = v.a.trans ? `${kk * sa}u + sgm + ${i * shape.m}u` : `(sgm + ${i * shape.m}u) * ${sa}u + ${kk}u`;
      mma.push(`let a${i} = subgroupMatrixLoad<${left}, ${v.a.trans ? 'col_major' : 'row_major'}>(&AS, ${off}, ${sa}u);`);
    }
    for (let j = 0; j < t.rn; j++) {
      const off = v.b.trans ? `(sgn + ${j * shape.n}u) * ${sb}u + ${kk}u` : `${kk * sb}u + sgn + ${j * shape.n}u`;
      mma.push(`let b${j} = subgroupMatrixLoad<${right}, ${v.b.trans ? 'col_major' : 'row_major'}>(&BS, ${off}, ${sb}u);`);
      for (let i = 0; i < t.rm; i++) mma.push(`acc${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc${i}_${j});`);
    }
    mma.push('}');
  }
  const epilogue: string[] = [];
  for (let i = 0; i < t.rm; i++) {
    for (let j = 0; j < t.rn; j++) {
      epilogue.push(`if (computes) { subgroupMatrixStore<row_major>(&CS, sg * ${cmn}u, acc${i}_${j}, ${shape.n}u); }
  workgroupBarrier();
  for (var e = lid; e < ${nsg * cmn}u; e += ${threads}u) {
    let s = e / ${cmn}u;
    let rc = e % ${cmn}u;
    let m = m0 + (s % ${t.wm}u) * ${t.rm * shape.m}u + ${i * shape.m}u + rc / ${shape.n}u;
    let n = n0 + (s / ${t.wm}u) * ${t.rn * shape.n}u + ${j * shape.n}u + rc % ${shape.n}u;
    if (m < u.M && n < u.N) { ${storeScalar(v, 'cBase + m * u.ldc + n', `CS[e] + ${biasValue(v, 'n')}`)} }
  }
  workgroupBarrier();`);
    }
  }
  const f16Needed = T === 'f16' || v.f16 || v.out === 'f16';
  const hv: GemmVariant = { ...v, f16: f16Needed };
  return {
    name: 'matmul_subgroup_matrix',
    variant: `${variantKey(v)}.${T}.${shape.m}x${shape.n}x${shape.k}.${t.wm}x${t.wn}.${t.rm}x${t.rn}.bk${t.bk}.sg${t.subgroupSize}`,
    bindings: bindingList(v),
    uniforms: GEMM_UNIFORMS,
    features: ['chromium-experimental-subgroup-matrix', ...(f16Needed ? ['shader-f16'] : [])],
    wgsl: /* wgsl */ `${header(hv, 'enable chromium_experimental_subgroup_matrix;\n')}diagnostic(off, chromium.subgroup_matrix_uniformity);
${declarations(v)}
var<workgroup> AS: array<${T}, ${aElems}>;
var<workgroup> BS: array<${T}, ${bElems}>;
var<workgroup> CS: array<f32, ${nsg * cmn}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
  let n0 = wid.x * ${bn}u;
  let m0 = wid.y * ${bm}u;
  let computes = sg < ${nsg}u;
  let sgm = (sg % ${t.wm}u) * ${t.rm * shape.m}u;
  let sgn = (sg / ${t.wm}u) * ${t.rn * shape.n}u;
  ${batchDecode()}
  ${accDecls.join('\n  ')}
  ${aIo.decls}
  ${bIo.decls}
  let tiles = (u.K + ${t.bk - 1}u) / ${t.bk}u;
  {
    let k0 = 0u;
    ${aIo.load}
    ${bIo.load}
  }
  for (var t = 0u; t < tiles; t++) {
    ${aIo.store}
    ${bIo.store}
    workgroupBarrier();
    if (t + 1u < tiles) {
      let k0 = (t + 1u) * ${t.bk}u;
      ${aIo.load}
      ${bIo.load}
    }
    if (computes) {
      ${mma.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${epilogue.join('\n  ')}
}`,
  };
}

// ---- bias gradient ---------------------------------------------------------------------------

/**
 * Column sums of a row-major [rows, cols] matrix of any float dtype into f32 (the bias gradient).
 * With `accumulate` set the sums are added to O, so a matrix past the binding limit goes in chunks.
 */
export function columnSumSpec(dtype: FloatDType, f16: boolean): KernelSpec {
  const native = dtype === 'f16' && f16;
  return {
    name: 'matmul_column_sum',
    variant: `${dtype}.${native ? 'f16' : 'packed'}`,
    bindings: ['read', 'read_write'],
    uniforms: ['rows', 'cols', 'xOff', 'accumulate'].map((name) => ({ name, type: 'u32' as const })),
    features: native ? ['shader-f16'] : [],
    wgsl: /* wgsl */ `${native ? 'enable f16;\n' : ''}${storageDecl('X', 0, 'read', native ? 'f16' : dtype === 'f32' ? 'f32' : 'u32')}
${storageDecl('O', 1, 'read_write', 'f32')}
struct Params { rows: u32, cols: u32, xOff: u32, accumulate: u32, }
@group(0) @binding(2) var<uniform> u: Params;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * 256u + lid;
  if (c >= u.cols) { return; }
  var acc = 0.0;
  for (var r = 0u; r < u.rows; r++) { acc += ${scalarLoad('X', dtype, f16, 'u.xOff + r * u.cols + c', 'f32')}; }
  if (u.accumulate != 0u) { acc += O[c]; }
  O[c] = acc;
}`,
  };
}

/** True when `dtype` is one of the float storages the matmul kernels read. */
export function isGemmDType(dtype: DType): dtype is FloatDType {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16';
}
