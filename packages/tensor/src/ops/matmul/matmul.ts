// matmul and linear: shape rules, kernel choice by device feature, splitting operands that pass
// the binding-size limit, dispatch, and the backward rules.
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { needsGrad, record } from '../../core/autograd.js';
import { empty } from '../../core/create.js';
import { DTYPE_BYTES, type DType } from '../../core/dtype.js';
import type { KernelSpec } from '../../core/kernel.js';
import type { BufferBinding, Runtime } from '../../core/runtime.js';
import { noGrad, numelOf, Tensor, type Shape } from '../../core/tensor.js';
import { sumTo } from '../reduce/sum-to.js';
import { broadcastStrides, sameShape } from '../shape-utils.js';
import {
  BROADCAST_TILE,
  broadcastGemmSpec,
  columnSumSpec,
  isGemmDType,
  MAX_BATCH_RANK,
  naiveGemmSpec,
  subgroupGemmSpec,
  subgroupKernelBytes,
  subgroupTileFor,
  subgroupTileSize,
  tiledGemmSpec,
  TILE_LARGE,
  TILE_SMALL,
  vectorWidth,
  type FloatDType,
  type GemmVariant,
  type SubgroupMatrixShape,
  type SubgroupTile,
  type TileConfig,
} from './matmul.kernel.js';

/**
 * Kernel paths: `naive` (one invocation per output, the fallback and reference), `tiled`
 * (register-tiled, f32 compute), `tiled-f16` (the same reading f16 natively; needs `shader-f16`),
 * `subgroup-matrix` (cooperative matrices in f16 with f32 accumulation; needs
 * `chromium-experimental-subgroup-matrix`; f32 inputs are rounded to f16 on this path),
 * `subgroup-broadcast` (for a software adapter: few loads per product, f32 compute; needs
 * `subgroups` with one fixed subgroup size). `auto` takes subgroup-broadcast on a fallback
 * (software) adapter that has it.
 */
export type MatmulKernel = 'auto' | 'naive' | 'tiled' | 'tiled-f16' | 'subgroup-broadcast' | 'subgroup-matrix';

export interface MatmulOptions {
  /** `a` is stored transposed: [..., K, M]. */
  transA?: boolean;
  /** `b` is stored transposed: [..., N, K] (PyTorch's Linear weight layout). */
  transB?: boolean;
  /** [N], added to every output row. */
  bias?: Tensor | null | undefined;
  /** Output dtype (default f32; f16 needs `shader-f16`). */
  outDtype?: 'f32' | 'f16';
  /** Kernel path; `auto` (default) picks by device features and dtypes. */
  kernel?: MatmulKernel;
  /** Output tile of the tiled kernels; `auto` picks by problem size. */
  tile?: 'auto' | 64 | 128;
  /**
   * Largest buffer binding to plan for (default and cap: the device's). Operands past it are split
   * into chunks; lowering it exercises that path.
   */
  maxBindingBytes?: number;
}

export type LinearOptions = Pick<MatmulOptions, 'outDtype' | 'kernel' | 'tile' | 'maxBindingBytes'>;

type Path = Exclude<MatmulKernel, 'auto'>;

interface SubgroupSetup {
  shape: SubgroupMatrixShape;
  tile: SubgroupTile;
}

const subgroupSetups = new WeakMap<Runtime, SubgroupSetup | null>();

/** The subgroup-matrix configuration this device would use, or null when it has none usable. */
function subgroupSetup(rt: Runtime): SubgroupSetup | null {
  const known = subgroupSetups.get(rt);
  if (known !== undefined) return known;
  let found: SubgroupSetup | null = null;
  const info = rt.gpu.info;
  const sg = info.subgroupMaxSize;
  if (rt.has('chromium-experimental-subgroup-matrix') && rt.has('subgroups') && sg > 0) {
    const f16 = rt.has('shader-f16');
    const candidates = info.subgroupMatrixConfigs
      .filter((c) => c.resultType === 'f32' && ((c.componentType === 'f16' && f16) || c.componentType === 'f32'))
      .sort((x, y) => (x.componentType === y.componentType ? y.M * y.N * y.K - x.M * x.N * x.K : x.componentType === 'f16' ? -1 : 1));
    for (const c of candidates) {
      const shape: SubgroupMatrixShape = { m: c.M, n: c.N, k: c.K, component: c.componentType === 'f16' ? 'f16' : 'f32' };
      const tile = subgroupTileFor(shape, sg);
      const threads = tile.wm * tile.wn * sg;
      let bytes = 0;
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const v: GemmVariant = {
            a: { dtype: 'f32', trans: ta, vec: false },
            b: { dtype: 'f32', trans: tb, vec: false },
            bias: null,
            out: 'f32',
            outVec: false,
            f16,
            accumulate: false,
          };
          bytes = Math.max(bytes, subgroupKernelBytes(v, shape, tile));
        }
      }
      if (threads <= info.limits.maxComputeInvocationsPerWorkgroup && bytes <= info.limits.maxComputeWorkgroupStorageSize) {
        found = { shape, tile };
        break;
      }
    }
  }
  subgroupSetups.set(rt, found);
  return found;
}

function tiledFits(rt: Runtime, t: TileConfig): boolean {
  const bytes = t.bk * (t.bm + 4 + t.bn + 4) * 4;
  return bytes <= rt.gpu.info.limits.maxComputeWorkgroupStorageSize && rt.gpu.info.limits.maxComputeInvocationsPerWorkgroup >= 256;
}

/** The fixed subgroup size the subgroup-broadcast kernel runs with, or 0 when the device has none. */
function broadcastLanes(rt: Runtime): number {
  const info = rt.gpu.info;
  const lanes = info.subgroupMinSize;
  if (!rt.has('subgroups') || lanes <= 0 || lanes !== info.subgroupMaxSize) return 0;
  return lanes <= info.limits.maxComputeInvocationsPerWorkgroup && lanes <= info.limits.maxComputeWorkgroupSizeX ? lanes : 0;
}

/** Kernel paths this runtime's device can run, simplest first. */
export function matmulKernels(rt: Runtime): Exclude<MatmulKernel, 'auto'>[] {
  const paths: Path[] = ['naive', 'tiled'];
  if (rt.has('shader-f16')) paths.push('tiled-f16');
  if (broadcastLanes(rt) > 0) paths.push('subgroup-broadcast');
  if (subgroupSetup(rt)) paths.push('subgroup-matrix');
  return paths;
}

// ---- the problem a kernel dispatch solves ------------------------------------------------------

interface Gemm {
  op: string;
  a: Tensor;
  b: Tensor;
  bias: Tensor | null;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  /** Output batch dims, with each operand's element stride per dim (0 where broadcast). */
  batch: readonly number[];
  aStrides: readonly number[];
  bStrides: readonly number[];
  outShape: Shape;
  outDtype: 'f32' | 'f16';
  kernel: MatmulKernel;
  tile: 'auto' | 64 | 128;
  maxBindingBytes: number | undefined;
}

/** Row-major strides of `batch` dims whose innermost element is a block of `inner` elements. */
function contiguousStrides(batch: readonly number[], inner: number): number[] {
  const out = new Array<number>(batch.length).fill(0);
  let s = inner;
  for (let i = batch.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= batch[i] ?? 1;
  }
  return out;
}

/** True when an operand has every batch dim of its own, laid out contiguously (no broadcast). */
function isFullBatch(strides: readonly number[], batch: readonly number[], inner: number): boolean {
  const natural = contiguousStrides(batch, inner);
  return batch.every((d, i) => d === 1 || strides[i] === natural[i]);
}

/**
 * Drops size-1 batch dims, merges dims both operands step through contiguously, and folds the
 * batch into M when B is shared across it and A is stored untransposed (one plain 2-D product).
 */
function normalizeBatch(p: Gemm): { M: number; batch: number[]; as: number[]; bs: number[] } {
  const batch: number[] = [];
  const as: number[] = [];
  const bs: number[] = [];
  p.batch.forEach((d, i) => {
    if (d === 1) return;
    const sa = p.aStrides[i] ?? 0;
    const sb = p.bStrides[i] ?? 0;
    const last = batch.length - 1;
    if (last >= 0 && as[last] === sa * d && bs[last] === sb * d) {
      batch[last] = (batch[last] ?? 1) * d;
      as[last] = sa;
      bs[last] = sb;
      return;
    }
    batch.push(d);
    as.push(sa);
    bs.push(sb);
  });
  if (batch.length > 0 && bs.every((s) => s === 0) && !p.transA && isFullBatch(as, batch, p.M * p.K)) {
    return { M: p.M * numelOf(batch), batch: [], as: [], bs: [] };
  }
  if (batch.length > MAX_BATCH_RANK) {
    throw new ShapeMismatchError({ op: p.op, expected: `at most ${MAX_BATCH_RANK} batch dims that do not merge`, got: p.batch });
  }
  return { M: p.M, batch, as, bs };
}

function choosePath(rt: Runtime, p: Gemm): Path {
  const available = matmulKernels(rt);
  if (p.kernel !== 'auto') {
    if (!available.includes(p.kernel)) throw new UnsupportedError({ what: 'matmul kernel on this device', got: p.kernel, supported: available, where: p.op });
    return p.kernel;
  }
  const setup = subgroupSetup(rt);
  if (setup?.shape.component === 'f16' && p.a.dtype === 'f16' && p.b.dtype === 'f16') return 'subgroup-matrix';
  // A software adapter runs invocations as CPU SIMD lanes: loads per product decide the speed.
  if (rt.gpu.info.isSoftware && available.includes('subgroup-broadcast')) return 'subgroup-broadcast';
  if (rt.has('shader-f16') && (p.a.dtype === 'f16' || p.b.dtype === 'f16' || p.bias?.dtype === 'f16' || p.outDtype === 'f16')) return 'tiled-f16';
  return 'tiled';
}

function chooseTile(rt: Runtime, p: Gemm, M: number, count: number): TileConfig {
  if (p.tile === 64 || !tiledFits(rt, TILE_LARGE)) return TILE_SMALL;
  if (p.tile === 128) return TILE_LARGE;
  // A CPU gains nothing from the larger tile and its shader takes far longer to compile there.
  if (rt.gpu.info.isSoftware) return TILE_SMALL;
  const tiles = Math.ceil(M / TILE_LARGE.bm) * Math.ceil(p.N / TILE_LARGE.bn) * count;
  return M >= TILE_LARGE.bm && p.N >= TILE_LARGE.bn && tiles >= 256 ? TILE_LARGE : TILE_SMALL;
}

interface Region {
  binding: BufferBinding;
  /** Element offset of the region's first element inside the binding. */
  off: number;
}

/** Binds elements [start, start + count) of `t` at an offset the device accepts. */
function region(t: Tensor, start: number, count: number, align: number): Region {
  const eb = DTYPE_BYTES[t.dtype];
  const first = t.byteOffset + start * eb;
  const base = Math.floor(first / align) * align;
  const end = t.byteOffset + (start + count) * eb;
  const size = Math.max(4, Math.ceil((end - base) / 4) * 4);
  return { binding: { buffer: t.storage.buffer, offset: base, size }, off: (first - base) / eb };
}

const specCache = new Map<string, KernelSpec>();

function cachedSpec(key: string, make: () => KernelSpec): KernelSpec {
  let spec = specCache.get(key);
  if (!spec) {
    spec = make();
    specCache.set(key, spec);
  }
  return spec;
}

const padBatch = (values: readonly number[], fill: number): number[] => [...new Array<number>(MAX_BATCH_RANK - values.length).fill(fill), ...values];

/** Runs one (batched) product into a new tensor of `p.outShape`. No autograd. */
function gemm(rt: Runtime, p: Gemm): Tensor {
  const out = empty(rt, p.outShape, p.outDtype);
  if (out.numel === 0) return out;
  const { M, batch, as, bs } = normalizeBatch(p);
  const { N, K } = p;
  const count = numelOf(batch);
  const path = choosePath(rt, p);
  let bm = 16;
  let bn = 16;
  let tile: TileConfig | null = null;
  const setup = path === 'subgroup-matrix' ? subgroupSetup(rt) : null;
  if (path === 'tiled' || path === 'tiled-f16') {
    tile = chooseTile(rt, p, M, count);
    bm = tile.bm;
    bn = tile.bn;
  } else if (setup) {
    ({ bm, bn } = subgroupTileSize(setup.shape, setup.tile));
  } else if (path === 'subgroup-broadcast') {
    bm = BROADCAST_TILE.rm;
    bn = BROADCAST_TILE.rn * broadcastLanes(rt);
  }

  const limits = rt.gpu.info.limits;
  const limit = Math.min(p.maxBindingBytes ?? Infinity, rt.maxBindingBytes);
  const align = limits.minStorageBufferOffsetAlignment;
  const fits = (t: Tensor): boolean => (t.byteOffset % align) + t.byteLength <= limit;
  const aBig = !fits(p.a);
  const bBig = !fits(p.b);
  const cBig = !fits(out);
  const over = (t: Tensor, name: string) => `${name} [${t.shape.join(', ')}] ${t.dtype}: ${t.byteLength} bytes > ${limit}`;
  if (p.bias && !fits(p.bias)) throw new UnsupportedError({ what: 'bias over the binding size limit', got: over(p.bias, 'bias'), where: p.op });
  if ((aBig || bBig || cBig) && batch.length > 0) {
    const big = aBig ? over(p.a, 'a') : bBig ? over(p.b, 'b') : over(out, 'output');
    throw new UnsupportedError({ what: 'batched matmul with an operand over the binding size limit', got: big, where: p.op });
  }
  // Operands past the limit are bound in chunks of whole stored rows: untransposed A and the
  // output by rows of M, transposed B by rows of N; transposed A and untransposed B by rows of K,
  // whose partial products are then summed into the output.
  const room = limit - align;
  const rowsFitting = (rowElems: number, dtype: DType): number => Math.floor(room / Math.max(1, rowElems * DTYPE_BYTES[dtype]));
  let mChunk = M;
  let nChunk = N;
  let kChunk = K;
  if (aBig && !p.transA) mChunk = Math.min(mChunk, rowsFitting(K, p.a.dtype));
  if (aBig && p.transA) kChunk = Math.min(kChunk, rowsFitting(M, p.a.dtype));
  if (bBig && p.transB) nChunk = Math.min(nChunk, rowsFitting(K, p.b.dtype));
  if (bBig && !p.transB) kChunk = Math.min(kChunk, rowsFitting(N, p.b.dtype));
  if (cBig) mChunk = Math.min(mChunk, rowsFitting(N, p.outDtype));
  if (mChunk < 1 || nChunk < 1 || (K > 0 && kChunk < 1)) {
    throw new UnsupportedError({ what: 'matmul whose single row passes the binding size limit', got: `M ${M}, N ${N}, K ${K}, limit ${limit} bytes`, where: p.op });
  }
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  mChunk = Math.min(mChunk, maxGroups * bm);
  nChunk = Math.min(nChunk, maxGroups * bn);
  // Whole tiles per chunk, and K chunks that keep vector loads aligned.
  if (mChunk < M && mChunk > bm) mChunk -= mChunk % bm;
  if (nChunk < N && nChunk > bn) nChunk -= nChunk % bn;
  if (kChunk < K && kChunk > 32) kChunk -= kChunk % 32;

  const lda = p.transA ? M : K;
  const ldb = p.transB ? K : N;
  const ldc = N;
  const anyF16 = p.a.dtype === 'f16' || p.b.dtype === 'f16' || p.bias?.dtype === 'f16' || p.outDtype === 'f16';
  const f16 = path === 'tiled-f16' || (path === 'subgroup-matrix' && rt.has('shader-f16')) || (path === 'subgroup-broadcast' && anyF16 && rt.has('shader-f16'));
  const vectorized = path !== 'naive' && path !== 'subgroup-broadcast';
  const aStrides = padBatch(as, 0);
  const bStrides = padBatch(bs, 0);
  const dims = padBatch(batch, 1);
  const aDType = p.a.dtype as FloatDType;
  const bDType = p.b.dtype as FloatDType;
  const va = vectorWidth(aDType);
  const vb = vectorWidth(bDType);
  const aWhole = aBig ? null : region(p.a, 0, p.a.numel, align);
  const bWhole = bBig ? null : region(p.b, 0, p.b.numel, align);
  const cWhole = cBig ? null : region(out, 0, out.numel, align);
  const biasRegion = p.bias ? region(p.bias, 0, N, align) : null;

  for (const m0 of chunkStarts(M, mChunk)) {
    const mc = Math.min(mChunk, M - m0);
    const cr = cWhole ?? region(out, m0 * ldc, mc * ldc, align);
    const cOffRow = cr.off + (cWhole ? m0 * ldc : 0);
    for (const n0 of chunkStarts(N, nChunk)) {
      const nc = Math.min(nChunk, N - n0);
      const cOff = cOffRow + n0;
      for (const k0 of chunkStarts(K, kChunk)) {
        const kc = Math.min(kChunk, K - k0);
        let ar: Region;
        let aOff: number;
        if (aWhole) {
          ar = aWhole;
          aOff = ar.off + (p.transA ? k0 * lda + m0 : m0 * lda + k0);
        } else if (p.transA) {
          ar = region(p.a, k0 * lda, kc * lda, align);
          aOff = ar.off + m0;
        } else {
          ar = region(p.a, m0 * lda, mc * lda, align);
          aOff = ar.off + k0;
        }
        let br: Region;
        let bOff: number;
        if (bWhole) {
          br = bWhole;
          bOff = br.off + (p.transB ? n0 * ldb + k0 : k0 * ldb + n0);
        } else if (p.transB) {
          br = region(p.b, n0 * ldb, nc * ldb, align);
          bOff = br.off + k0;
        } else {
          br = region(p.b, k0 * ldb, kc * ldb, align);
          bOff = br.off + n0;
        }
        // Later K chunks add to what the first wrote (which already holds the bias).
        const first = k0 === 0;
        const bias = first ? biasRegion : null;
        const aVec =
          vectorized && (p.transA ? mc : kc) % va === 0 && lda % va === 0 && aOff % va === 0 && aStrides.every((s) => s % va === 0) && ar.binding.size >= 16;
        const bVec =
          vectorized && (p.transB ? kc : nc) % vb === 0 && ldb % vb === 0 && bOff % vb === 0 && bStrides.every((s) => s % vb === 0) && br.binding.size >= 16;
        const outVec =
          (path === 'tiled' || path === 'tiled-f16') && p.outDtype === 'f32' && nc % 4 === 0 && ldc % 4 === 0 && cOff % 4 === 0 && (M * N) % 4 === 0 && cr.binding.size >= 16;
        const variant: GemmVariant = {
          a: { dtype: aDType, trans: p.transA, vec: aVec },
          b: { dtype: bDType, trans: p.transB, vec: bVec },
          bias: bias && p.bias ? (p.bias.dtype as FloatDType) : null,
          out: p.outDtype,
          outVec,
          f16,
          accumulate: !first,
        };
        const spec = specFor(rt, path, variant, tile, setup);
        const bindings = [ar.binding, br.binding, ...(bias ? [bias.binding] : []), cr.binding];
        const biasOff = (bias?.off ?? 0) + n0;
        for (let z0 = 0; z0 < count; z0 += maxGroups) {
          const zc = Math.min(maxGroups, count - z0);
          const uniforms = [mc, nc, kc, lda, ldb, ldc, aOff, bOff, cOff, biasOff, z0, M * N, ...dims, ...aStrides, ...bStrides];
          rt.dispatch(spec, bindings, uniforms, [Math.ceil(nc / bn), Math.ceil(mc / bm), zc]);
        }
      }
    }
  }
  return out;
}

/** First indices of the chunks of `total` (one empty chunk when total is 0, so K = 0 still writes). */
function chunkStarts(total: number, chunk: number): number[] {
  const starts: number[] = [];
  for (let i = 0; i === 0 || i < total; i += Math.max(1, chunk)) starts.push(i);
  return starts;
}

function specFor(rt: Runtime, path: Path, v: GemmVariant, tile: TileConfig | null, setup: SubgroupSetup | null): KernelSpec {
  const software = rt.gpu.info.isSoftware;
  const key = `${path}|${JSON.stringify(v)}|${JSON.stringify(tile)}|${JSON.stringify(setup)}|${software}`;
  return cachedSpec(key, () => {
    if (path === 'naive') return naiveGemmSpec(v);
    if (path === 'subgroup-matrix' && setup) return subgroupGemmSpec(v, setup.shape, setup.tile);
    if (path === 'subgroup-broadcast') return broadcastGemmSpec(v, { ...BROADCAST_TILE, lanes: broadcastLanes(rt) });
    return tiledGemmSpec(v, tile ?? TILE_SMALL, !software);
  });
}

/** Column sums of `g` viewed as [rows, n] into a new f32 tensor of `shape` (the bias gradient). */
function columnSum(rt: Runtime, g: Tensor, n: number, shape: Shape, maxBindingBytes: number | undefined): Tensor {
  const out = empty(rt, shape, 'f32');
  if (n === 0) return out;
  const rows = g.numel / n;
  if (rows === 0) {
    rt.clear(out.binding(), out.byteLength);
    return out;
  }
  const align = rt.gpu.info.limits.minStorageBufferOffsetAlignment;
  const limit = Math.min(maxBindingBytes ?? Infinity, rt.maxBindingBytes);
  const rowBytes = n * DTYPE_BYTES[g.dtype];
  const chunk = Math.max(1, Math.floor((limit - align) / rowBytes));
  const spec = columnSumSpec(g.dtype as FloatDType, rt.has('shader-f16'));
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const rc = Math.min(chunk, rows - r0);
    const r = region(g, r0 * n, rc * n, align);
    rt.dispatch(spec, [r.binding, out.binding()], [rc, n, r.off, r0 > 0 ? 1 : 0], [Math.ceil(n / 256), 1, 1]);
  }
  return out;
}

/** A handle of `shape` on the storage of `t` (same element count), replacing `t`. */
function reshapeInto(t: Tensor, shape: Shape): Tensor {
  if (sameShape(t.shape, shape)) return t;
  t.storage.refs += 1;
  const view = new Tensor(t.rt, t.storage, shape, t.dtype, t.byteOffset);
  t.dispose();
  return view;
}

// ---- the ops -----------------------------------------------------------------------------------

const FLOAT_EXPECTED = 'f32 | f16 | bf16';

function describeOperand(t: Tensor, trans: boolean): string {
  return `[${t.shape.join(', ')}]${trans ? ' (transposed)' : ''}`;
}

function matmulOp(op: string, a: Tensor, b: Tensor, o: MatmulOptions): Tensor {
  a.assertAlive(op);
  b.assertAlive(op);
  const bias = o.bias ?? null;
  bias?.assertAlive(op);
  if (!isGemmDType(a.dtype) || !isGemmDType(b.dtype)) throw new DTypeError({ op, expected: FLOAT_EXPECTED, got: `${a.dtype}, ${b.dtype}` });
  if (bias && !isGemmDType(bias.dtype)) throw new DTypeError({ op: `${op} bias`, expected: FLOAT_EXPECTED, got: bias.dtype });
  const outDtype = o.outDtype ?? 'f32';
  if (outDtype !== 'f32' && outDtype !== 'f16') throw new DTypeError({ op: `${op} outDtype`, expected: 'f32 | f16', got: String(outDtype) });
  const rt = a.rt;
  if (outDtype === 'f16' && !rt.has('shader-f16')) throw new UnsupportedError({ what: 'f16 output without the shader-f16 feature', got: outDtype, supported: ['f32'], where: op });
  const transA = o.transA ?? false;
  const transB = o.transB ?? false;
  const both = `a ${describeOperand(a, transA)}, b ${describeOperand(b, transB)}`;
  if (a.ndim === 0 || b.ndim === 0 || (a.ndim === 1 && transA) || (b.ndim === 1 && transB)) {
    throw new ShapeMismatchError({ op, expected: 'operands with at least 1 dim (2 when transposed)', got: both });
  }
  const aShape = a.ndim === 1 ? [1, a.shape[0] ?? 0] : [...a.shape];
  const bShape = b.ndim === 1 ? [b.shape[0] ?? 0, 1] : [...b.shape];
  const ra = aShape[aShape.length - 2] ?? 0;
  const ca = aShape[aShape.length - 1] ?? 0;
  const rb = bShape[bShape.length - 2] ?? 0;
  const cb = bShape[bShape.length - 1] ?? 0;
  const M = transA ? ca : ra;
  const K = transA ? ra : ca;
  const N = transB ? rb : cb;
  const Kb = transB ? cb : rb;
  if (K !== Kb) {
    throw new ShapeMismatchError({ op, expected: `b with ${K} ${transB ? 'columns' : 'rows'} to match a ${describeOperand(a, transA)}`, got: `b ${describeOperand(b, transB)}`, detail: `inner dims ${K} vs ${Kb}` });
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[aBatch.length - rank + i] ?? 1;
    const db = bBatch[bBatch.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeMismatchError({ op, expected: 'batch dims that broadcast', got: both, detail: `batch dim ${i}: ${da} vs ${db}` });
    batch.push(da === 1 ? db : da);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N)) throw new ShapeMismatchError({ op, expected: `bias [${N}] for ${both}`, got: `bias [${bias.shape.join(', ')}]` });
  const outShape = [...batch, ...(a.ndim === 1 ? [] : [M]), ...(b.ndim === 1 ? [] : [N])];
  const aStrides = broadcastStrides(aBatch, batch).map((s) => s * M * K);
  const bStrides = broadcastStrides(bBatch, batch).map((s) => s * K * N);
  const common = { op, kernel: o.kernel ?? 'auto', tile: o.tile ?? 'auto', maxBindingBytes: o.maxBindingBytes } as const;
  const out = gemm(rt, { ...common, a, b, bias, transA, transB, M, N, K, batch, aStrides, bStrides, outShape, outDtype });
  if (!needsGrad(a, b, bias)) return out;

  const needA = a.requiresGrad;
  const needB = b.requiresGrad;
  const needBias = bias?.requiresGrad ?? false;
  // Gradients are f32 and use the f32 paths unless a simpler one was asked for.
  const back = { ...common, kernel: o.kernel === 'naive' || o.kernel === 'tiled' ? o.kernel : 'auto', outDtype: 'f32', bias: null } as const;
  const gStrides = contiguousStrides(batch, M * N);
  const saved = [...(needB ? [a] : []), ...(needA ? [b] : [])];
  return record(out, op, [a, b, bias], saved, (g, s) =>
    noGrad(() => {
      const savedA = needB ? s[0] : undefined;
      const savedB = needA ? s[needB ? 1 : 0] : undefined;
      let gA: Tensor | null = null;
      let gB: Tensor | null = null;
      let gBias: Tensor | null = null;
      if (needA && savedB) {
        const aFull = isFullBatch(aStrides, batch, M * K) && aBatch.length === batch.length;
        const shape = aFull ? a.shape : [...batch, ra, ca];
        const full = transA
          ? gemm(rt, { ...back, a: savedB, transA: transB, b: g, transB: true, M: K, N: M, K: N, batch, aStrides: bStrides, bStrides: gStrides, outShape: shape })
          : gemm(rt, { ...back, a: g, transA: false, b: savedB, transB: !transB, M, N: K, K: N, batch, aStrides: gStrides, bStrides, outShape: shape });
        gA = aFull ? full : reduceTo(full, aShape, a.shape);
      }
      if (needB && savedA) {
        const bFull = isFullBatch(bStrides, batch, K * N) && bBatch.length === batch.length;
        const aContiguous = !transA && isFullBatch(aStrides, batch, M * K) && aBatch.length === batch.length;
        const count = numelOf(batch);
        if (!bFull && bBatch.length === 0 && aContiguous && count > 1) {
          // B is shared across the batch: fold the batch into the reduction (one 2-D product).
          gB = transB
            ? gemm(rt, { ...back, a: g, transA: true, b: savedA, transB: false, M: N, N: K, K: count * M, batch: [], aStrides: [], bStrides: [], outShape: b.shape })
            : gemm(rt, { ...back, a: savedA, transA: true, b: g, transB: false, M: K, N, K: count * M, batch: [], aStrides: [], bStrides: [], outShape: b.shape });
        } else {
          const shape = bFull ? b.shape : [...batch, rb, cb];
          const full = transB
            ? gemm(rt, { ...back, a: g, transA: true, b: savedA, transB: transA, M: N, N: K, K: M, batch, aStrides: gStrides, bStrides: aStrides, outShape: shape })
            : gemm(rt, { ...back, a: savedA, transA: !transA, b: g, transB: false, M: K, N, K: M, batch, aStrides, bStrides: gStrides, outShape: shape });
          gB = bFull ? full : reduceTo(full, bShape, b.shape);
        }
      }
      if (needBias && bias) gBias = columnSum(rt, g, N, bias.shape, o.maxBindingBytes);
      return [gA, gB, gBias];
    }),
  );
}

/** Sums a batched gradient down to an operand's (2-D-padded) shape and gives it the operand's shape. */
function reduceTo(full: Tensor, padded: Shape, shape: Shape): Tensor {
  const reduced = sumTo(full, padded);
  full.dispose();
  return reshapeInto(reduced, shape);
}

/**
 * Matrix product of the last two dims of `a` and `b` with NumPy broadcasting of the leading
 * (batch) dims; 1-D operands are a row (a) or column (b) vector whose dim is dropped from the
 * result. Inputs may be f32, f16 or bf16; accumulation is f32; the output is f32 unless
 * `outDtype: 'f16'`. Gradients flow to the inputs (and bias) that require them.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  return matmulOp('matmul', a, b, options);
}

/**
 * `x @ weight^T + bias` with `weight` [out, in] (PyTorch's Linear layout) and any leading dims
 * on x. Weights may be f32, f16 or bf16; a frozen weight (requiresGrad false) gets no gradient.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, options: LinearOptions = {}): Tensor {
  if (weight.ndim !== 2) throw new ShapeMismatchError({ op: 'linear', expected: 'weight [out, in]', got: `weight [${weight.shape.join(', ')}] for x [${x.shape.join(', ')}]` });
  const inFeatures = weight.shape[1] ?? 0;
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== inFeatures) {
    throw new ShapeMismatchError({ op: 'linear', expected: `x [..., ${inFeatures}] to match weight [${weight.shape.join(', ')}]`, got: `x [${x.shape.join(', ')}]` });
  }
  return matmulOp('linear', x, weight, { ...options, transB: true, bias: bias ?? null });
}
