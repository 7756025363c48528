// The 4-bit linear op (y = x W^T + b with W decoded tile by tile inside the matmul) with its
// gradient to x, and the Linear4bit layer that @peft-ts/models and @peft-ts/lora plug in.
import { DTypeError, PeftError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { DTYPE_BYTES, empty, matmul, matmulKernels, needsGrad, noGrad, record, sumTo, type Runtime, type Tensor } from '@peft-ts/tensor';
import { bindingLimit, offsetAlignment, region, type Region } from './bindings.js';
import { codeBase, codeTables, f32Bits } from './codes.js';
import {
  GEMV_FEATURES,
  gemv4bitSpec,
  matmul4bitSpec,
  TILE_LARGE,
  TILE_SMALL,
  tileBytes,
  type ActivationDType,
  type Tile4bit,
} from './matmul-4bit.kernel.js';

/** Most rows the few-rows kernel takes. */
const GEMV_ROWS = 8;
import { checkQuantized, dequantize4bitGpu } from './quantize.js';
import { disposeQuantized4bit, quantizedParts, type Quantized4bitTensor } from './quantized-tensor.js';

export interface Linear4bitOptions {
  /**
   * 'f32' (default): decoded weights and activations multiply in f32. 'f16': both are rounded to
   * f16 before multiplying (bitsandbytes' float16 compute dtype; needs `shader-f16`); products
   * still accumulate in f32 and the output is f32.
   */
  computeDtype?: 'f32' | 'f16';
  /**
   * Kernel: 'auto' (default) picks by problem size; 'tiled-64' and 'tiled-128' are the tiled
   * kernel with 64x64 or 128x128 output tiles; 'gemv' the few-rows kernel (forward only, for at
   * most 8 rows and in-features a multiple of 8; the input gradient uses a tiled kernel).
   */
  kernel?: 'auto' | 'tiled-64' | 'tiled-128' | 'gemv';
  /** Largest buffer binding to plan for (default and cap: the device's); lowering it exercises splitting. */
  maxBindingBytes?: number;
}

const FLOAT: readonly string[] = ['f32', 'f16', 'bf16'];

function fitTile(rt: Runtime, tile: Tile4bit, f16: boolean): Tile4bit | null {
  const limits = rt.gpu.info.limits;
  if (limits.maxComputeInvocationsPerWorkgroup < 256) return null;
  for (const bk of [tile.bk, 16, 8]) {
    const t = { ...tile, bk };
    if (bk <= tile.bk && tileBytes(t, f16) <= limits.maxComputeWorkgroupStorageSize) return t;
  }
  return null;
}

function chooseTile(rt: Runtime, M: number, N: number, f16: boolean, requested: Linear4bitOptions['kernel']): Tile4bit {
  const small = fitTile(rt, TILE_SMALL, f16);
  const large = fitTile(rt, TILE_LARGE, f16);
  if (!small) {
    throw new UnsupportedError({ what: 'device limits for the 4-bit matmul', got: `${rt.gpu.info.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`, where: 'linear4bit' });
  }
  if (requested === 'tiled-64' || !large) return small;
  if (requested === 'tiled-128') return large;
  // The large tile pays off once it still gives every multiprocessor a few workgroups.
  return M >= 128 && N >= 128 && Math.ceil(M / 128) * Math.ceil(N / 128) >= 96 ? large : small;
}

/**
 * C = A W^T (`transW`, A [..., in] -> C [..., out]) or C = A W (A [..., out] -> C [..., in]) with
 * W the 4-bit weight [out, in], in f32. No autograd.
 */
function gemm4bit(op: string, a: Tensor, w: Quantized4bitTensor, transW: boolean, bias: Tensor | null, options: Linear4bitOptions): Tensor {
  const rt = a.rt;
  const [WR = 0, KW = 0] = w.shape;
  const K = transW ? KW : WR;
  const N = transW ? WR : KW;
  const outShape = [...a.shape.slice(0, -1), N];
  const out = empty(rt, outShape, 'f32');
  const M = a.numel / K;
  if (out.numel === 0) return out;
  const f16 = options.computeDtype === 'f16';
  if (f16 && !rt.has('shader-f16')) {
    out.dispose();
    throw new UnsupportedError({ what: 'f16 compute without the shader-f16 feature', got: 'f16', supported: ['f32'], where: op });
  }
  // A software adapter (a CPU) multiplies fastest with the subgroup-broadcast kernel from plain
  // memory: the layer is decoded whole (the same f32 values the fused kernel decodes) for this
  // one product and freed; the sums run in the same order, so the result is the same.
  const auto = options.kernel === undefined || options.kernel === 'auto';
  if (auto && !f16 && M > GEMV_ROWS && rt.gpu.info.isSoftware && matmulKernels(rt).includes('subgroup-broadcast')) {
    out.dispose();
    const dense = dequantize4bitGpu(w, { dtype: 'f32', ...(options.maxBindingBytes !== undefined ? { maxBindingBytes: options.maxBindingBytes } : {}) });
    try {
      return noGrad(() => matmul(a, dense, { transB: transW, bias, kernel: 'subgroup-broadcast', ...(options.maxBindingBytes !== undefined ? { maxBindingBytes: options.maxBindingBytes } : {}) }));
    } finally {
      dense.dispose();
    }
  }
  const limit = bindingLimit(rt, options.maxBindingBytes);
  const align = offsetAlignment(rt);
  for (const t of [...quantizedParts(w), ...(bias ? [bias] : [])]) {
    if (t.byteLength > limit) {
      out.dispose();
      throw new UnsupportedError({ what: `4-bit weight part over the binding size limit`, got: `${t.name ?? 'tensor'} [${t.shape.join(', ')}] ${t.dtype}: ${t.byteLength} bytes > ${limit}`, where: op });
    }
  }
  const stats = w.doubleQuant ? [w.qabsmax.binding(), w.nestedAbsmax.binding()] : [w.absmax.binding()];
  const tables = codeTables(rt).binding();
  const biasBinding = bias ? region(rt, bias, 0, N) : null;
  const bshift = Math.log2(w.blocksize);
  const offset = w.doubleQuant ? f32Bits(w.offset) : 0;
  const aDType = a.dtype as ActivationDType;
  const biasDType = bias ? (bias.dtype as ActivationDType) : null;
  const uniformsFor = (ar: Region, cr: Region, rows: number) => [rows, N, K, KW, WR, ar.off, cr.off, bshift, codeBase(w.quantType), offset, biasBinding?.off ?? 0];
  const bindingsFor = (ar: Region, cr: Region) => [ar.binding, w.packed.binding(), ...stats, tables, ...(biasBinding ? [biasBinding.binding] : []), cr.binding];

  const gemvFits = transW && KW % 8 === 0 && M <= GEMV_ROWS && Math.ceil(N / GEMV_FEATURES) <= rt.gpu.info.limits.maxComputeWorkgroupsPerDimension;
  if (options.kernel === 'gemv' && transW && !gemvFits) {
    out.dispose();
    throw new UnsupportedError({ what: 'the gemv kernel for this shape', got: `${M} rows, ${KW} in-features`, supported: [`at most ${GEMV_ROWS} rows and in-features a multiple of 8`], where: op });
  }
  if (gemvFits && (options.kernel === 'gemv' || options.kernel === undefined || options.kernel === 'auto')) {
    const rows = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;
    const spec = gemv4bitSpec({ a: aDType, doubleQuant: w.doubleQuant, bias: biasDType, f16, rows });
    const ar = region(rt, a, 0, M * K);
    const cr = region(rt, out, 0, M * N);
    rt.dispatch(spec, bindingsFor(ar, cr), uniformsFor(ar, cr, M), [Math.ceil(N / GEMV_FEATURES), 1, 1]);
    return out;
  }

  const tile = chooseTile(rt, M, N, f16, options.kernel);
  const BM = 16 * tile.tm;
  const BN = 16 * tile.tn;
  const rowBytes = Math.max(K * DTYPE_BYTES[a.dtype], N * 4);
  let rows = Math.min(M, Math.floor((limit - align) / rowBytes), rt.gpu.info.limits.maxComputeWorkgroupsPerDimension * BM);
  if (rows < 1) {
    out.dispose();
    throw new UnsupportedError({ what: 'a single row over the binding size limit', got: `${rowBytes} bytes per row > ${limit}`, where: op });
  }
  if (rows < M && rows > BM) rows -= rows % BM;
  const spec = matmul4bitSpec({ transW, a: aDType, doubleQuant: w.doubleQuant, aligned: KW % 8 === 0, bias: biasDType, f16, tile });
  for (let m0 = 0; m0 < M; m0 += rows) {
    const mc = Math.min(rows, M - m0);
    const ar = region(rt, a, m0 * K, mc * K);
    const cr = region(rt, out, m0 * N, mc * N);
    rt.dispatch(spec, bindingsFor(ar, cr), uniformsFor(ar, cr, mc), [Math.ceil(N / BN), Math.ceil(mc / BM), 1]);
  }
  return out;
}

function checkWeight(w: Quantized4bitTensor, op: string): void {
  checkQuantized(w, op);
  if (w.shape.length !== 2) throw new ShapeMismatchError({ op, expected: 'a 4-bit weight [out, in]', got: w.shape });
  if (w.packed.byteOffset % 4 !== 0) throw new PeftError('UNALIGNED', `${op}: packed weight data must start on a 4-byte boundary`);
}

/** The weight with its tensors replaced by the handles backward saved. */
function withParts(w: Quantized4bitTensor, parts: readonly Tensor[]): Quantized4bitTensor {
  const [packed, s1, s2] = parts;
  if (!packed || !s1) throw new PeftError('GRAPH_FREED', 'linear4bit: saved weight tensors are missing');
  if (w.doubleQuant) {
    if (!s2) throw new PeftError('GRAPH_FREED', 'linear4bit: saved weight tensors are missing');
    return { ...w, packed, qabsmax: s1, nestedAbsmax: s2 };
  }
  return { ...w, packed, absmax: s1 };
}

/**
 * `x W^T + bias` with W a 4-bit weight [out, in] and any leading dims on x (f32, f16 or bf16
 * storage; output f32). The weight is decoded tile by tile in workgroup memory, never as a whole.
 * Gradients flow to x (`dx = dy W`, the same fused decoding) and to a bias that requires them;
 * the 4-bit weight is frozen.
 */
export function linear4bit(x: Tensor, w: Quantized4bitTensor, bias?: Tensor | null, options: Linear4bitOptions = {}): Tensor {
  const op = 'linear4bit';
  x.assertAlive(op);
  checkWeight(w, op);
  const [out = 0, inF = 0] = w.shape;
  if (!FLOAT.includes(x.dtype)) throw new DTypeError({ op, expected: 'f32 | f16 | bf16', got: x.dtype });
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeMismatchError({ op, expected: `x [..., ${inF}] to match the 4-bit weight [${out}, ${inF}]`, got: `x [${x.shape.join(', ')}]` });
  }
  const b = bias ?? null;
  if (b) {
    b.assertAlive(op);
    if (!FLOAT.includes(b.dtype)) throw new DTypeError({ op: `${op} bias`, expected: 'f32 | f16 | bf16', got: b.dtype });
    if (b.ndim !== 1 || b.shape[0] !== out) throw new ShapeMismatchError({ op, expected: `bias [${out}] for weight [${out}, ${inF}]`, got: `bias [${b.shape.join(', ')}]` });
  }
  const y = gemm4bit(op, x, w, true, b, options);
  if (!needsGrad(x, b)) return y;
  const needX = x.requiresGrad;
  const needBias = b?.requiresGrad ?? false;
  return record(y, op, [x, b], needX ? quantizedParts(w) : [], (g, saved) =>
    noGrad(() => {
      const back = options.kernel === 'gemv' ? { ...options, kernel: 'auto' as const } : options;
      const gx = needX ? gemm4bit(`${op} backward`, g, withParts(w, saved), false, null, back) : null;
      const gb = needBias && b ? sumTo(g, b.shape) : null;
      return [gx, gb];
    }),
  );
}

/** The @peft-ts/models `Linear` contract, restated so this subpath needs models only for types in tests. */
export interface LinearModule {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(x: Tensor): Tensor;
  parameters(): Tensor[];
  dispose(): void;
}

/** A frozen linear layer over a 4-bit weight (QLoRA's base layer). */
export class Linear4bit implements LinearModule {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    readonly name: string,
    /** [out, in], quantized. Owned: dispose() frees it. */
    readonly weight: Quantized4bitTensor,
    /** [out] (f32 unless loaded otherwise); trainable when the caller sets requiresGrad. */
    public bias: Tensor | null = null,
    readonly options: Linear4bitOptions = {},
  ) {
    checkWeight(weight, `Linear4bit ${name}`);
    const [out = 0, inF = 0] = weight.shape;
    this.outFeatures = out;
    this.inFeatures = inF;
  }

  forward(x: Tensor): Tensor {
    return linear4bit(x, this.weight, this.bias, this.options);
  }

  parameters(): Tensor[] {
    return this.bias?.requiresGrad ? [this.bias] : [];
  }

  dispose(): void {
    disposeQuantized4bit(this.weight);
    this.bias?.dispose();
  }
}
