// quantize4bitGpu and dequantize4bitGpu: the root export's quantize()/dequantize() on GPU
// tensors, bit-identical to them.
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { DTYPE_BYTES, empty, fromArray, grid1d, type MemoryTag, type Runtime, type Tensor } from '@peft-ts/tensor';
import { BLOCKSIZES, QUANT_TYPES, nestAbsmax, type QuantType, type SourceDType } from '../index.js';
import { bindingLimit, offsetAlignment, region } from './bindings.js';
import { codeBase, codeTables, f32Bits } from './codes.js';
import { DEQUANTIZE_SPAN, dequantizeSpec, type DequantizeDType } from './dequantize.kernel.js';
import { quantizeSpan, quantizeSpec, elementsPerThread, type QuantizeInputDType } from './quantize.kernel.js';
import { quantizedNumel, type Quantized4bitTensor } from './quantized-tensor.js';

export interface QuantizeGpuOptions {
  /** 'nf4' (default) or 'fp4'. */
  type?: QuantType;
  /** Elements per absmax block: a power of two from 32 to 4096 (default 64). */
  blocksize?: number;
  /** Quantize the block absmax to 8 bits as well (default false). */
  doubleQuant?: boolean;
  /** Shape to record (default: the weight's); its product must be the number of elements. */
  shape?: readonly number[];
  /** Original dtype to record (default: from the weight's dtype). */
  dtype?: SourceDType;
  /** Memory tag of the result (default 'weights'). */
  tag?: MemoryTag;
  /** Name prefix of the result's tensors. */
  name?: string;
  /** Largest buffer binding to plan for (default and cap: the device's); lowering it exercises splitting. */
  maxBindingBytes?: number;
}

const SOURCE_DTYPE: Record<QuantizeInputDType, SourceDType> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };

function checkType(type: unknown, where: string): QuantType {
  if (type === 'nf4' || type === 'fp4') return type;
  throw new UnsupportedError({ what: 'quant type', got: type, supported: QUANT_TYPES, where });
}

function checkBlocksize(blocksize: unknown, where: string): number {
  if (typeof blocksize === 'number' && BLOCKSIZES.includes(blocksize)) return blocksize;
  throw new UnsupportedError({ what: 'blocksize', got: blocksize, supported: BLOCKSIZES.map(String), where });
}

/** Throws unless `t` fits one binding (the small per-block statistics are bound whole). */
function checkWhole(rt: Runtime, t: Tensor, what: string, where: string, maxBindingBytes: number | undefined): void {
  const limit = bindingLimit(rt, maxBindingBytes);
  if (t.byteLength > limit) {
    throw new UnsupportedError({ what: `${what} over the binding size limit`, got: `${t.byteLength} bytes > ${limit}`, where });
  }
}

/** Elements per dispatch: whole units that keep every binding offset aligned, within the binding limit. */
function chunkElements(rt: Runtime, unit: number, bytesPerElement: number, maxBindingBytes: number | undefined, what: string): number {
  const limit = bindingLimit(rt, maxBindingBytes);
  const fit = Math.floor((limit - offsetAlignment(rt)) / bytesPerElement);
  const chunk = Math.floor(fit / unit) * unit;
  if (chunk < unit) {
    throw new UnsupportedError({ what: 'binding size limit below one aligned slice', got: `${limit} bytes for ${unit} elements of ${bytesPerElement} bytes`, where: what });
  }
  return chunk;
}

/**
 * Quantizes an f32/f16/bf16 GPU tensor to 4 bits, bit-identical to the root export's
 * `quantize()` on the same values: packed bytes, absmax and, with `doubleQuant`, qabsmax,
 * nested absmax and offset. The kernels compute on float bit patterns with integer arithmetic
 * (block max over magnitude bits, exact reciprocal and product), so no device rounding mode or
 * subnormal flushing can change a byte.
 *
 * With `doubleQuant` the block absmax values are read back (4 bytes per block, one sync) and
 * nested on the host with the root export's `nestAbsmax`, whose offset is a float32 mean in a
 * fixed summation order; qabsmax and nested absmax are then uploaded. Without it nothing is read
 * back. The weight itself is left alone: dispose it to free the 16-bit copy.
 */
export async function quantize4bitGpu(weight: Tensor, options: QuantizeGpuOptions = {}): Promise<Quantized4bitTensor> {
  weight.assertAlive('quantize4bitGpu');
  const dtype = weight.dtype;
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') throw new DTypeError({ op: 'quantize4bitGpu', expected: 'f32 | f16 | bf16', got: dtype });
  const quantType = checkType(options.type ?? 'nf4', 'quantize4bitGpu');
  const blocksize = checkBlocksize(options.blocksize ?? 64, 'quantize4bitGpu');
  const n = weight.numel;
  const shape = options.shape ? [...options.shape] : [...weight.shape];
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || shape.reduce((a, b) => a * b, 1) !== n) {
    throw new ShapeMismatchError({ op: 'quantize4bitGpu', expected: `a shape with ${n} elements (weight [${weight.shape.join(', ')}])`, got: shape });
  }
  if (n === 0) throw new ShapeMismatchError({ op: 'quantize4bitGpu', expected: 'at least one element', got: weight.shape });
  const rt = weight.rt;
  const doubleQuant = options.doubleQuant ?? false;
  const tag = options.tag ?? 'weights';
  const name = (part: string) => (options.name ? `${options.name}.${part}` : part);
  const blocks = Math.ceil(n / blocksize);

  const packed = empty(rt, [(n + 1) >> 1], 'u8', { tag, name: name('packed') }).keep();
  const absmax = empty(rt, [blocks], 'f32', { tag: doubleQuant ? 'other' : tag, name: name('absmax') }).keep();
  const span = quantizeSpan(blocksize);
  const unit = Math.max(span, 2 * offsetAlignment(rt));
  const chunk = chunkElements(rt, unit, DTYPE_BYTES[dtype], options.maxBindingBytes, 'quantize4bitGpu');
  const spec = quantizeSpec(dtype, quantType, blocksize);
  checkWhole(rt, absmax, 'absmax', 'quantize4bitGpu', options.maxBindingBytes);
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const bytes = (count + 1) >> 1;
    const x = region(rt, weight, start, count);
    const p = region(rt, packed, start / 2, bytes);
    const threads = Math.ceil(count / elementsPerThread(blocksize));
    rt.dispatch(
      spec,
      [x.binding, p.binding, absmax.binding()],
      [count, x.off, p.off / 4, Math.ceil(bytes / 4), start / blocksize, Math.ceil(count / blocksize)],
      grid1d(threads, 256),
    );
  }
  const base = { quantType, blocksize, shape, dtype: options.dtype ?? SOURCE_DTYPE[dtype], packed };
  if (!doubleQuant) return { ...base, doubleQuant: false, absmax };

  let nested: ReturnType<typeof nestAbsmax>;
  try {
    nested = nestAbsmax((await absmax.toArray()) as Float32Array);
  } catch (error) {
    packed.dispose();
    throw error;
  } finally {
    absmax.dispose();
  }
  return {
    ...base,
    doubleQuant: true,
    qabsmax: fromArray(rt, nested.qabsmax, [blocks], 'u8', { tag, name: name('qabsmax') }).keep(),
    nestedAbsmax: fromArray(rt, nested.nestedAbsmax, [nested.nestedAbsmax.length], 'f32', { tag, name: name('nested_absmax') }).keep(),
    offset: nested.offset,
    nestedBlocksize: nested.nestedBlocksize,
  };
}

export interface DequantizeGpuOptions {
  /** Output dtype: 'f32' (default), or f16/bf16 rounded to nearest even. */
  dtype?: DequantizeDType;
  /** Memory tag of the result (default 'activations'). */
  tag?: MemoryTag;
  /** Largest buffer binding to plan for (default and cap: the device's). */
  maxBindingBytes?: number;
}

/** Checks a quantized tensor's parts against its shape and returns its element count. */
export function checkQuantized(q: Quantized4bitTensor, op: string): number {
  const n = quantizedNumel(q);
  const blocks = Math.ceil(n / q.blocksize);
  checkBlocksize(q.blocksize, op);
  const part = (t: Tensor, what: string, dtype: string, length: number) => {
    t.assertAlive(op);
    if (t.dtype !== dtype) throw new DTypeError({ op: `${op} ${what}`, expected: dtype, got: t.dtype });
    if (t.numel !== length) throw new ShapeMismatchError({ op: `${op} ${what}`, expected: [length], got: t.shape, detail: `shape [${q.shape.join(', ')}] in blocks of ${q.blocksize}` });
  };
  part(q.packed, 'packed', 'u8', (n + 1) >> 1);
  if (q.doubleQuant) {
    part(q.qabsmax, 'qabsmax', 'u8', blocks);
    part(q.nestedAbsmax, 'nested_absmax', 'f32', Math.ceil(blocks / q.nestedBlocksize));
    if (q.nestedBlocksize !== 256) throw new UnsupportedError({ what: 'nested blocksize', got: q.nestedBlocksize, supported: ['256'], where: op });
  } else {
    part(q.absmax, 'absmax', 'f32', blocks);
  }
  return n;
}

/**
 * `out[i] = round_to(dtype, f32(code[index_i] * absmax[i / blocksize]))` in the original shape,
 * bit-identical to the root export's `dequantize()`; double-quantized statistics are decoded in
 * the kernel.
 */
export function dequantize4bitGpu(q: Quantized4bitTensor, options: DequantizeGpuOptions = {}): Tensor {
  const n = checkQuantized(q, 'dequantize4bitGpu');
  const out = options.dtype ?? 'f32';
  if (out !== 'f32' && out !== 'f16' && out !== 'bf16') throw new DTypeError({ op: 'dequantize4bitGpu', expected: 'f32 | f16 | bf16', got: String(out) });
  const rt = q.packed.rt;
  const result = empty(rt, q.shape, out, { tag: options.tag ?? 'activations' });
  const spec = dequantizeSpec(out, q.doubleQuant, q.blocksize);
  const unit = Math.max(DEQUANTIZE_SPAN, q.blocksize, 2 * offsetAlignment(rt));
  const chunk = chunkElements(rt, unit, DTYPE_BYTES[out], options.maxBindingBytes, 'dequantize4bitGpu');
  const stats = q.doubleQuant ? [q.qabsmax.binding(), q.nestedAbsmax.binding()] : [q.absmax.binding()];
  const tables = codeTables(rt).binding();
  const offset = q.doubleQuant ? f32Bits(q.offset) : 0;
  for (const t of q.doubleQuant ? [q.qabsmax, q.nestedAbsmax] : [q.absmax]) checkWhole(rt, t, 'block statistics', 'dequantize4bitGpu', options.maxBindingBytes);
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const groups = Math.ceil(count / 8);
    const p = region(rt, q.packed, start / 2, (count + 1) >> 1);
    const o = region(rt, result, start, count);
    rt.dispatch(
      spec,
      [p.binding, ...stats, tables, o.binding],
      [count, p.off / 4, groups, Math.ceil(count / 2), start / q.blocksize, codeBase(q.quantType), offset],
      grid1d(groups, 256),
    );
  }
  return result;
}
