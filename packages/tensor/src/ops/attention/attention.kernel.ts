// WGSL for flash-style attention on the [B, T, H, D] layout: a tiled forward with an online
// softmax that saves the row logsumexp, and FlashAttention-2 style dK/dV and dQ passes.
import { UnsupportedError } from '@peft-ts/errors';
import { GRID_HELPERS, storageDecls, uniformDecl, uniforms, type BindingKind, type KernelSpec } from '../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../core/dtype.js';

/** The uniform block every attention kernel reads (the token kernel has its own). */
export const ATTENTION_UNIFORMS = uniforms('T:u32', 'HQ:u32', 'HKV:u32', 'GROUP:u32', 'D:u32', 'scale:f32', 'causal:u32', 'window:u32', 'hasTok:u32');

/**
 * A thread layout over a rows x cols tile: nr x nc threads; thread t owns rows
 * t / nc + i * nr (i < tr) and cols t % nc + j * nc (j < tc). Strided ownership keeps
 * neighbouring threads on neighbouring addresses.
 */
export interface TileLayout {
  nr: number;
  nc: number;
  tr: number;
  tc: number;
}

/** Picks the layout with the fewest idle column slots, then the fewest loads per multiply-add. */
export function tileLayout(rows: number, cols: number, threads: number): TileLayout {
  let best: (TileLayout & { slots: number }) | undefined;
  for (let nc = 1; nc <= threads; nc *= 2) {
    const nr = threads / nc;
    if (nr > rows || rows % nr !== 0) continue;
    const tr = rows / nr;
    const tc = Math.ceil(cols / nc);
    const slots = nc * tc;
    if (!best || slots < best.slots || (slots === best.slots && tr + tc <= best.tr + best.tc)) best = { nr, nc, tr, tc, slots };
  }
  if (!best) throw new Error(`attention: no thread layout for a ${rows}x${cols} tile on ${threads} threads`);
  return { nr: best.nr, nc: best.nc, tr: best.tr, tc: best.tc };
}

export type AttentionKernel = 'forward' | 'backward-kv' | 'backward-q';

/**
 * Head dims are compiled in buckets of 16 so that odd sizes share pipelines: D is a WGSL
 * constant when it fills its bucket (64, 80, 96, 128 in real models) and a uniform otherwise.
 */
export function headDimBucket(d: number): number {
  return Math.max(16, Math.ceil(d / 16) * 16);
}

/**
 * Block sizes of one kernel: br query rows and bc key rows per step, on `threads` invocations,
 * for head dim `d` held in workgroup rows of `db` (its bucket).
 */
export interface AttentionPlan {
  kernel: AttentionKernel;
  d: number;
  db: number;
  br: number;
  bc: number;
  threads: number;
}

/** Bytes of workgroup memory a kernel with these blocks declares (f32 and u32 words). */
export function workgroupBytes(kernel: AttentionKernel, db: number, br: number, bc: number): number {
  const dp = db + 1;
  const sp = br * (bc + 1);
  const rowInfo = 2 * br + 2 * bc;
  switch (kernel) {
    case 'forward':
      return 4 * ((br + bc) * dp + sp + 2 * br + rowInfo);
    case 'backward-kv':
    case 'backward-q':
      return 4 * (2 * (br + bc) * dp + 2 * sp + 2 * br + rowInfo);
  }
}

// Largest first. The forward and dQ passes own query rows (br); the dK/dV pass owns key rows (bc).
const QUERY_OWNED: readonly [number, number][] = [
  [64, 64], [64, 32], [32, 32], [32, 16], [16, 16], [16, 8], [8, 8], [8, 4], [4, 4],
];
const KEY_OWNED: readonly [number, number][] = [
  [64, 64], [32, 64], [32, 32], [16, 32], [16, 16], [8, 16], [8, 8], [4, 8], [4, 4],
];

/** The largest blocks whose workgroup memory fits `limitBytes` for head dim `d`. */
export function planAttention(kernel: AttentionKernel, d: number, limitBytes: number, maxThreads: number): AttentionPlan {
  const candidates = kernel === 'backward-kv' ? KEY_OWNED : QUERY_OWNED;
  const db = headDimBucket(d);
  for (const [br, bc] of candidates) {
    if (workgroupBytes(kernel, db, br, bc) > limitBytes) continue;
    const threads = Math.min(128, br * bc, 2 ** Math.floor(Math.log2(maxThreads)));
    if (threads < Math.max(br, bc)) continue;
    return { kernel, d, db, br, bc, threads };
  }
  throw new UnsupportedError({
    what: 'head dim for the workgroup memory of this device',
    got: `D=${d} needs ${workgroupBytes(kernel, db, 4, 4)} bytes, the device gives ${limitBytes}`,
    where: `attention ${kernel}`,
  });
}

const u = (n: number): string => `${n}u`;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** `let` declarations of the rows and columns a thread owns in layout `L` (names `${p}r0..`, `${p}c0..`). */
function ownership(p: string, L: TileLayout, clampCols = false): string {
  const lines = [`let ${p}r = t / ${u(L.nc)};`, `let ${p}c = t % ${u(L.nc)};`];
  for (const i of range(L.tr)) lines.push(`let ${p}r${i} = ${p}r + ${u(i * L.nr)};`);
  for (const j of range(L.tc)) {
    lines.push(`let ${p}c${j} = ${p}c + ${u(j * L.nc)};`);
    // Columns past D (when nc does not divide D) read a valid address and are never written.
    if (clampCols) lines.push(`let ${p}k${j} = min(${p}c${j}, D - 1u);`);
  }
  return lines.join('\n  ');
}

/**
 * Dot products over d for a score tile: for each (acc, A, B) term, acc[i][j] += A[row_i][d] * B[col_j][d]
 * where both operands are [rows][DP] workgroup arrays.
 */
function dotTile(p: string, L: TileLayout, terms: readonly [string, string, string][]): string {
  const loads: string[] = [];
  const fmas: string[] = [];
  for (const [acc, a, b] of terms) {
    for (const i of range(L.tr)) loads.push(`let ${acc}a${i} = ${a}[${p}r${i} * DP + d];`);
    for (const j of range(L.tc)) loads.push(`let ${acc}b${j} = ${b}[${p}c${j} * DP + d];`);
    for (const i of range(L.tr)) for (const j of range(L.tc)) fmas.push(`${acc}[${i * L.tc + j}] += ${acc}a${i} * ${acc}b${j};`);
  }
  return `for (var d = 0u; d < D; d++) {
    ${loads.join('\n    ')}
    ${fmas.join('\n    ')}
  }`;
}

/**
 * Rank-1 updates over `n` steps x: acc[i][j] += left[leftAt(row_i, x)] * right[rightAt(x, col_j)]
 * (columns clamped to D); with `rowSum`, also rowSum[i] += left[...].
 */
function outerTile(
  p: string,
  L: TileLayout,
  n: number,
  terms: readonly { acc: string; left: string; leftAt: (row: string) => string; right: string; rightAt: (col: string) => string; rowSum?: string }[],
): string {
  const loads: string[] = [];
  const fmas: string[] = [];
  for (const { acc, left, leftAt, right, rightAt, rowSum } of terms) {
    for (const i of range(L.tr)) loads.push(`let ${acc}l${i} = ${left}[${leftAt(`${p}r${i}`)}];`);
    if (rowSum) for (const i of range(L.tr)) fmas.push(`${rowSum}[${i}] += ${acc}l${i};`);
    for (const j of range(L.tc)) loads.push(`let ${acc}r${j} = ${right}[${rightAt(`${p}k${j}`)}];`);
    for (const i of range(L.tr)) for (const j of range(L.tc)) fmas.push(`${acc}[${i * L.tc + j}] += ${acc}l${i} * ${acc}r${j};`);
  }
  return `for (var x = 0u; x < ${u(n)}; x++) {
    ${loads.join('\n    ')}
    ${fmas.join('\n    ')}
  }`;
}

/** Per-element code over a thread's tile: `body(i, j, rowVar, colVar, flatIndex)`. */
function eachCell(p: string, L: TileLayout, body: (i: number, j: number, r: string, c: string, k: number) => string): string {
  const out: string[] = [];
  for (const i of range(L.tr)) for (const j of range(L.tc)) out.push(body(i, j, `${p}r${i}`, `${p}c${j}`, i * L.tc + j));
  return out.join('\n  ');
}

// Token info is [B, T, 2] u32: (1 = real token / 0 = padding, segment id). Without it every
// in-range token is real and all share segment 0.
const TOKEN_FNS = /* wgsl */ `
fn tokLive(b: u32, i: u32) -> u32 {
  if (i >= u.T) { return 0u; }
  if (u.hasTok == 0u) { return 1u; }
  return select(0u, 1u, TOK[2u * (b * u.T + i)] != 0u);
}
fn tokSeg(b: u32, i: u32) -> u32 {
  if (i >= u.T || u.hasTok == 0u) { return 0u; }
  return TOK[2u * (b * u.T + i) + 1u];
}
// Key j is visible to query i: both real, same segment, causal and window bounds.
fn visible(r: u32, c: u32, i: u32, j: u32) -> bool {
  return qLive[r] != 0u && kLive[c] != 0u && qSeg[r] == kSeg[c]
    && (u.causal == 0u || j <= i) && (u.window == 0u || i < j + u.window);
}
`;

// Masked scores hold MASKED; anything above LIVE is a real score.
const CONSTS = /* wgsl */ `
const MASKED: f32 = -3.0e38;
const LIVE: f32 = -1.0e38;
`;

function rowInfoDecls(br: number, bc: number): string {
  return `var<workgroup> qLive: array<u32, ${br}>;
var<workgroup> qSeg: array<u32, ${br}>;
var<workgroup> kLive: array<u32, ${bc}>;
var<workgroup> kSeg: array<u32, ${bc}>;`;
}

/** Loads `rows` rows of one head of a [B, T, H, D] tensor into a [rows][DP] workgroup array (zeros past T). */
function loadRows(dst: string, src: string, dtype: DType, rows: number, threads: number, row0: string, heads: string, head: string): string {
  const idx = `((b * u.T + i) * ${heads} + ${head}) * D + e % D`;
  return `for (var e = t; e < ${u(rows)} * D; e += ${u(threads)}) {
    let i = ${row0} + e / D;
    var x = 0.0;
    if (i < u.T) { x = f32(${wgslLoad(dtype, src, idx)}); }
    ${dst}[(e / D) * DP + e % D] = x;
  }`;
}

/** Module-scope head-dim constants; `dimInMain` reads D from the uniforms when it is not one. */
function dimConsts(plan: AttentionPlan): string {
  const exact = plan.d === plan.db;
  return `const DP: u32 = ${u(plan.db + 1)};${exact ? `\nconst D: u32 = ${u(plan.d)};` : ''}`;
}
function dimInMain(plan: AttentionPlan): string {
  return plan.d === plan.db ? '' : 'let D = u.D;';
}
function dimVariant(plan: AttentionPlan): string {
  return plan.d === plan.db ? `d${plan.d}` : `db${plan.db}`;
}

export interface AttentionDTypes {
  q: DType;
  k: DType;
  v: DType;
}

function decls(names: readonly string[], kinds: readonly BindingKind[], types: readonly string[]): string {
  return `${storageDecls(kinds, names, types)}\n${uniformDecl(ATTENTION_UNIFORMS, kinds.length)}`;
}

/**
 * Forward: workgroup (query block, head, batch). Streams key/value blocks through workgroup
 * memory with an online softmax; writes O [B, T, HQ, D] and LSE [B, HQ, T] (MASKED for rows that
 * see no key, whose output is zero).
 * Bindings: Q, K, V, TOK, O, LSE.
 */
export function attentionForwardSpec(plan: AttentionPlan, dt: AttentionDTypes): KernelSpec {
  const { db, br, bc, threads: nt } = plan;
  const bcp = bc + 1;
  const S = tileLayout(br, bc, nt);
  const O = tileLayout(br, db, nt);
  const bindings: BindingKind[] = ['read', 'read', 'read', 'read', 'read_write', 'read_write'];
  const wgsl = /* wgsl */ `
${decls(['Q', 'K', 'V', 'TOK', 'O', 'LSE'], bindings, [wgslStorageType(dt.q), wgslStorageType(dt.k), wgslStorageType(dt.v), 'u32', 'f32', 'f32'])}
${CONSTS}
${dimConsts(plan)}
var<workgroup> qs: array<f32, ${br * (db + 1)}>;
var<workgroup> kv: array<f32, ${bc * (db + 1)}>;
var<workgroup> ss: array<f32, ${br * bcp}>;
var<workgroup> rowM: array<f32, ${br}>;
var<workgroup> rowA: array<f32, ${br}>;
${rowInfoDecls(br, bc)}
${TOKEN_FNS}
@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  ${dimInMain(plan)}
  let b = wid.z;
  let h = wid.y;
  let q0 = wid.x * ${u(br)};
  let kvh = h / u.GROUP;
  ${ownership('s', S)}
  ${ownership('o', O, true)}
  ${loadRows('qs', 'Q', dt.q, br, nt, 'q0', 'u.HQ', 'h')}
  if (t < ${u(br)}) {
    qLive[t] = tokLive(b, q0 + t);
    qSeg[t] = tokSeg(b, q0 + t);
    rowM[t] = MASKED;
  }
  // Output accumulators and softmax row sums of the rows this thread owns.
  var acc: array<f32, ${O.tr * O.tc}>;
  var lsum: array<f32, ${O.tr}>;
  let qLast = min(q0 + ${u(br)}, u.T) - 1u;
  let kEnd = select(u.T, qLast + 1u, u.causal != 0u);
  let kBegin = select(0u, q0 + 1u - u.window, u.window != 0u && q0 + 1u > u.window);
  let kbEnd = (kEnd + ${u(bc - 1)}) / ${u(bc)};
  for (var kb = kBegin / ${u(bc)}; kb < kbEnd; kb++) {
    let k0 = kb * ${u(bc)};
    workgroupBarrier();
    ${loadRows('kv', 'K', dt.k, bc, nt, 'k0', 'u.HKV', 'kvh')}
    if (t < ${u(bc)}) {
      kLive[t] = tokLive(b, k0 + t);
      kSeg[t] = tokSeg(b, k0 + t);
    }
    workgroupBarrier();
    // Explicitly zeroed: lavapipe does not re-zero a loop-scoped var declared without a value.
    var sacc = array<f32, ${S.tr * S.tc}>();
    ${dotTile('s', S, [['sacc', 'qs', 'kv']])}
    ${eachCell('s', S, (_i, _j, r, c, k) => `ss[${r} * ${u(bcp)} + ${c}] = sacc[${k}];`)}
    workgroupBarrier();
    ${loadRows('kv', 'V', dt.v, bc, nt, 'k0', 'u.HKV', 'kvh')}
    // Row owners mask and scale their scores and move the running max; the exps run on all threads.
    if (t < ${u(br)}) {
      let row = t * ${u(bcp)};
      let m = rowM[t];
      var bm = MASKED;
      for (var c = 0u; c < ${u(bc)}; c++) {
        let sv = select(MASKED, ss[row + c] * u.scale, visible(t, c, q0 + t, k0 + c));
        ss[row + c] = sv;
        bm = max(bm, sv);
      }
      let mn = max(m, bm);
      rowA[t] = select(0.0, exp(m - mn), m > LIVE);
      rowM[t] = mn;
    }
    workgroupBarrier();
    for (var e = t; e < ${u(br * bc)}; e += ${u(nt)}) {
      let at = (e / ${u(bc)}) * ${u(bcp)} + e % ${u(bc)};
      let sv = ss[at];
      ss[at] = select(0.0, exp(sv - rowM[e / ${u(bc)}]), sv > LIVE);
    }
    workgroupBarrier();
    ${range(O.tr).map((i) => `{ let a = rowA[or${i}]; lsum[${i}] *= a; ${range(O.tc).map((j) => `acc[${i * O.tc + j}] *= a;`).join(' ')} }`).join('\n    ')}
    ${outerTile('o', O, bc, [{ acc: 'acc', left: 'ss', leftAt: (r) => `${r} * ${u(bcp)} + x`, right: 'kv', rightAt: (c) => `x * DP + ${c}`, rowSum: 'lsum' }])}
  }
  ${range(O.tr).map((i) => `if (oc == 0u && q0 + or${i} < u.T) { LSE[(b * u.HQ + h) * u.T + q0 + or${i}] = select(MASKED, rowM[or${i}] + log(lsum[${i}]), lsum[${i}] > 0.0); }`).join('\n  ')}
  ${eachCell('o', O, (i, _j, r, c, k) => `if (q0 + ${r} < u.T && ${c} < D) { O[((b * u.T + q0 + ${r}) * u.HQ + h) * D + ${c}] = select(0.0, acc[${k}] / lsum[${i}], lsum[${i}] > 0.0); }`)}
}`;
  return {
    name: 'attention-forward',
    variant: `${dt.q}:${dt.k}:${dt.v}:${dimVariant(plan)}:br${br}:bc${bc}:t${nt}`,
    bindings,
    uniforms: ATTENTION_UNIFORMS,
    wgsl,
  };
}

/**
 * Builds the token info [B, T, 2] u32 from an optional padding mask and optional segment ids
 * (both [B, T], i32 or u32 bound as u32 words). Bindings: MASK, SEG, TOK.
 */
export function attentionTokensSpec(): KernelSpec {
  const tokUniforms = uniforms('n:u32', 'hasMask:u32', 'hasSeg:u32');
  const bindings: BindingKind[] = ['read', 'read', 'read_write'];
  return {
    name: 'attention-tokens',
    variant: 'v1',
    bindings,
    uniforms: tokUniforms,
    wgsl: /* wgsl */ `
${storageDecls(bindings, ['MASK', 'SEG', 'TOK'], ['u32', 'u32', 'u32'])}
${uniformDecl(tokUniforms, bindings.length)}
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = gid(wid, nwg, lid, 256u);
  if (n >= u.n) { return; }
  var live = 1u;
  if (u.hasMask != 0u && MASK[n] == 0u) { live = 0u; }
  var seg = 0u;
  if (u.hasSeg != 0u) { seg = SEG[n]; }
  TOK[2u * n] = live;
  TOK[2u * n + 1u] = seg;
}`,
  };
}

/**
 * Backward prologue: STATS [B, HQ, T, 2] = (LSE, rowsum(dO * O)) per query row, so the backward
 * passes read both through one binding. Bindings: DO, O, LSE, STATS.
 */
export function attentionDeltaSpec(dtDo: DType): KernelSpec {
  const deltaUniforms = uniforms('rows:u32', 'T:u32', 'HQ:u32', 'D:u32');
  const bindings: BindingKind[] = ['read', 'read', 'read', 'read_write'];
  return {
    name: 'attention-delta',
    variant: dtDo,
    bindings,
    uniforms: deltaUniforms,
    wgsl: /* wgsl */ `
${storageDecls(bindings, ['DO', 'O', 'LSE', 'STATS'], [wgslStorageType(dtDo), 'f32', 'f32', 'f32'])}
${uniformDecl(deltaUniforms, bindings.length)}
${GRID_HELPERS}
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = gid(wid, nwg, lid, 128u);
  if (row >= u.rows) { return; }
  // row = (b * T + i) * HQ + h
  let h = row % u.HQ;
  let bi = row / u.HQ;
  let i = bi % u.T;
  let b = bi / u.T;
  var s = 0.0;
  for (var d = 0u; d < u.D; d++) {
    let at = row * u.D + d;
    s += f32(${wgslLoad(dtDo, 'DO', 'at')}) * O[at];
  }
  let st = (b * u.HQ + h) * u.T + i;
  STATS[2u * st] = LSE[st];
  STATS[2u * st + 1u] = s;
}`,
  };
}

/**
 * Turns raw scores (in `sArr`) and dP (in `dsArr`) into P = exp(S * scale - lse) on visible
 * cells (0 elsewhere) and dS = P * (dP - delta), in place, one block cell per step.
 */
function probsAndDs(br: number, bc: number, nt: number, sArr: string, dsArr: string): string {
  return `for (var e = t; e < ${u(br * bc)}; e += ${u(nt)}) {
      let r = e / ${u(bc)};
      let c = e % ${u(bc)};
      let at = r * ${u(bc + 1)} + c;
      let p = select(0.0, exp(${sArr}[at] * u.scale - rowL[r]), visible(r, c, q0 + r, k0 + c));
      ${sArr}[at] = p;
      ${dsArr}[at] = p * (${dsArr}[at] - rowD[r]);
    }`;
}

function loadRowStats(br: number): string {
  return `if (t < ${u(br)}) {
      let i = q0 + t;
      qLive[t] = tokLive(b, i);
      qSeg[t] = tokSeg(b, i);
      var lse = 0.0;
      var dl = 0.0;
      if (i < u.T) {
        let st = (b * u.HQ + h) * u.T + i;
        lse = STATS[2u * st];
        dl = STATS[2u * st + 1u];
      }
      rowL[t] = lse;
      rowD[t] = dl;
    }`;
}

export interface AttentionBackwardDTypes extends AttentionDTypes {
  dout: DType;
}

/**
 * dK/dV: workgroup (key block, kv head, batch). Holds its K and V block, streams the query
 * blocks of every query head that shares the kv head (in order, so the GQA sum is
 * deterministic), and accumulates dK and dV in registers. Bindings: Q, K, V, DO, STATS, TOK, DK, DV.
 */
export function attentionBackwardKVSpec(plan: AttentionPlan, dt: AttentionBackwardDTypes): KernelSpec {
  const { db, br, bc, threads: nt } = plan;
  const bcp = bc + 1;
  const S = tileLayout(br, bc, nt);
  const A = tileLayout(bc, db, nt);
  const bindings: BindingKind[] = ['read', 'read', 'read', 'read', 'read', 'read', 'read_write', 'read_write'];
  const types = [wgslStorageType(dt.q), wgslStorageType(dt.k), wgslStorageType(dt.v), wgslStorageType(dt.dout), 'f32', 'u32', 'f32', 'f32'];
  const wgsl = /* wgsl */ `
${decls(['Q', 'K', 'V', 'DO', 'STATS', 'TOK', 'DK', 'DV'], bindings, types)}
${CONSTS}
${dimConsts(plan)}
var<workgroup> ks: array<f32, ${bc * (db + 1)}>;
var<workgroup> vs: array<f32, ${bc * (db + 1)}>;
var<workgroup> qs: array<f32, ${br * (db + 1)}>;
var<workgroup> dos: array<f32, ${br * (db + 1)}>;
var<workgroup> ps: array<f32, ${br * bcp}>;
var<workgroup> dss: array<f32, ${br * bcp}>;
var<workgroup> rowL: array<f32, ${br}>;
var<workgroup> rowD: array<f32, ${br}>;
${rowInfoDecls(br, bc)}
${TOKEN_FNS}
@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  ${dimInMain(plan)}
  let b = wid.z;
  let g = wid.y;
  let k0 = wid.x * ${u(bc)};
  ${ownership('s', S)}
  ${ownership('a', A, true)}
  ${loadRows('ks', 'K', dt.k, bc, nt, 'k0', 'u.HKV', 'g')}
  ${loadRows('vs', 'V', dt.v, bc, nt, 'k0', 'u.HKV', 'g')}
  if (t < ${u(bc)}) {
    kLive[t] = tokLive(b, k0 + t);
    kSeg[t] = tokSeg(b, k0 + t);
  }
  var dk: array<f32, ${A.tr * A.tc}>;
  var dv: array<f32, ${A.tr * A.tc}>;
  let kLast = min(k0 + ${u(bc)}, u.T) - 1u;
  let qBegin = select(0u, k0, u.causal != 0u);
  let qEnd = select(u.T, min(u.T, kLast + u.window), u.window != 0u);
  let qbEnd = (qEnd + ${u(br - 1)}) / ${u(br)};
  for (var hh = 0u; hh < u.GROUP; hh++) {
    let h = g * u.GROUP + hh;
    for (var qb = qBegin / ${u(br)}; qb < qbEnd; qb++) {
      let q0 = qb * ${u(br)};
      workgroupBarrier();
      ${loadRows('qs', 'Q', dt.q, br, nt, 'q0', 'u.HQ', 'h')}
      ${loadRows('dos', 'DO', dt.dout, br, nt, 'q0', 'u.HQ', 'h')}
      ${loadRowStats(br)}
      workgroupBarrier();
      var sacc = array<f32, ${S.tr * S.tc}>();
      var dpacc = array<f32, ${S.tr * S.tc}>();
      ${dotTile('s', S, [['sacc', 'qs', 'ks'], ['dpacc', 'dos', 'vs']])}
      ${eachCell('s', S, (_i, _j, r, c, k) => `ps[${r} * ${u(bcp)} + ${c}] = sacc[${k}]; dss[${r} * ${u(bcp)} + ${c}] = dpacc[${k}];`)}
      workgroupBarrier();
      ${probsAndDs(br, bc, nt, 'ps', 'dss')}
      workgroupBarrier();
      ${outerTile('a', A, br, [
        { acc: 'dv', left: 'ps', leftAt: (c) => `x * ${u(bcp)} + ${c}`, right: 'dos', rightAt: (col) => `x * DP + ${col}` },
        { acc: 'dk', left: 'dss', leftAt: (c) => `x * ${u(bcp)} + ${c}`, right: 'qs', rightAt: (col) => `x * DP + ${col}` },
      ])}
    }
  }
  ${eachCell('a', A, (_i, _j, r, c, k) => `if (k0 + ${r} < u.T && ${c} < D) { let at = ((b * u.T + k0 + ${r}) * u.HKV + g) * D + ${c}; DK[at] = dk[${k}] * u.scale; DV[at] = dv[${k}]; }`)}
}`;
  return {
    name: 'attention-backward-kv',
    variant: `${dt.q}:${dt.k}:${dt.v}:${dt.dout}:${dimVariant(plan)}:br${br}:bc${bc}:t${nt}`,
    bindings,
    uniforms: ATTENTION_UNIFORMS,
    wgsl,
  };
}

/**
 * dQ: workgroup (query block, head, batch). Holds its Q and dO block and streams key/value
 * blocks, accumulating dQ in registers. Bindings: Q, K, V, DO, STATS, TOK, DQ.
 */
export function attentionBackwardQSpec(plan: AttentionPlan, dt: AttentionBackwardDTypes): KernelSpec {
  const { db, br, bc, threads: nt } = plan;
  const bcp = bc + 1;
  const S = tileLayout(br, bc, nt);
  const A = tileLayout(br, db, nt);
  const bindings: BindingKind[] = ['read', 'read', 'read', 'read', 'read', 'read', 'read_write'];
  const types = [wgslStorageType(dt.q), wgslStorageType(dt.k), wgslStorageType(dt.v), wgslStorageType(dt.dout), 'f32', 'u32', 'f32'];
  const wgsl = /* wgsl */ `
${decls(['Q', 'K', 'V', 'DO', 'STATS', 'TOK', 'DQ'], bindings, types)}
${CONSTS}
${dimConsts(plan)}
var<workgroup> qs: array<f32, ${br * (db + 1)}>;
var<workgroup> dos: array<f32, ${br * (db + 1)}>;
var<workgroup> ks: array<f32, ${bc * (db + 1)}>;
var<workgroup> vs: array<f32, ${bc * (db + 1)}>;
var<workgroup> ss: array<f32, ${br * bcp}>;
var<workgroup> dss: array<f32, ${br * bcp}>;
var<workgroup> rowL: array<f32, ${br}>;
var<workgroup> rowD: array<f32, ${br}>;
${rowInfoDecls(br, bc)}
${TOKEN_FNS}
@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  ${dimInMain(plan)}
  let b = wid.z;
  let h = wid.y;
  let q0 = wid.x * ${u(br)};
  let kvh = h / u.GROUP;
  ${ownership('s', S)}
  ${ownership('a', A, true)}
  ${loadRows('qs', 'Q', dt.q, br, nt, 'q0', 'u.HQ', 'h')}
  ${loadRows('dos', 'DO', dt.dout, br, nt, 'q0', 'u.HQ', 'h')}
  ${loadRowStats(br)}
  var dq: array<f32, ${A.tr * A.tc}>;
  let qLast = min(q0 + ${u(br)}, u.T) - 1u;
  let kEnd = select(u.T, qLast + 1u, u.causal != 0u);
  let kBegin = select(0u, q0 + 1u - u.window, u.window != 0u && q0 + 1u > u.window);
  let kbEnd = (kEnd + ${u(bc - 1)}) / ${u(bc)};
  for (var kb = kBegin / ${u(bc)}; kb < kbEnd; kb++) {
    let k0 = kb * ${u(bc)};
    workgroupBarrier();
    ${loadRows('ks', 'K', dt.k, bc, nt, 'k0', 'u.HKV', 'kvh')}
    ${loadRows('vs', 'V', dt.v, bc, nt, 'k0', 'u.HKV', 'kvh')}
    if (t < ${u(bc)}) {
      kLive[t] = tokLive(b, k0 + t);
      kSeg[t] = tokSeg(b, k0 + t);
    }
    workgroupBarrier();
    var sacc = array<f32, ${S.tr * S.tc}>();
    var dpacc = array<f32, ${S.tr * S.tc}>();
    ${dotTile('s', S, [['sacc', 'qs', 'ks'], ['dpacc', 'dos', 'vs']])}
    ${eachCell('s', S, (_i, _j, r, c, k) => `ss[${r} * ${u(bcp)} + ${c}] = sacc[${k}]; dss[${r} * ${u(bcp)} + ${c}] = dpacc[${k}];`)}
    workgroupBarrier();
    ${probsAndDs(br, bc, nt, 'ss', 'dss')}
    workgroupBarrier();
    ${outerTile('a', A, bc, [{ acc: 'dq', left: 'dss', leftAt: (r) => `${r} * ${u(bcp)} + x`, right: 'ks', rightAt: (col) => `x * DP + ${col}` }])}
  }
  ${eachCell('a', A, (_i, _j, r, c, k) => `if (q0 + ${r} < u.T && ${c} < D) { DQ[((b * u.T + q0 + ${r}) * u.HQ + h) * D + ${c}] = dq[${k}] * u.scale; }`)}
}`;
  return {
    name: 'attention-backward-q',
    variant: `${dt.q}:${dt.k}:${dt.v}:${dt.dout}:${dimVariant(plan)}:br${br}:bc${bc}:t${nt}`,
    bindings,
    uniforms: ATTENTION_UNIFORMS,
    wgsl,
  };
}
