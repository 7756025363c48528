// A 4-bit tensor on the GPU: the root export's Quantized4bit state with its arrays held as
// tensors, and moving it between host and device (upload, download, dispose).
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { fromArray, type MemoryTag, type Runtime, type Tensor } from '@peft-ts/tensor';
import { blockAbsmax, numel, type QuantType, type Quantized4bit, type SourceDType } from '../index.js';

interface Quantized4bitTensorBase {
  quantType: QuantType;
  /** Elements per absmax block. */
  blocksize: number;
  /** The original tensor's shape; data is flattened row-major. */
  shape: number[];
  /** The original tensor's dtype, as bitsandbytes records it. */
  dtype: SourceDType;
  /** u8 [(n + 1) / 2]: two indices per byte, element 2k in the high nibble. */
  packed: Tensor;
}

/** One float32 absmax per block. */
export interface PlainQuantized4bitTensor extends Quantized4bitTensorBase {
  doubleQuant: false;
  /** f32 [blocks]. */
  absmax: Tensor;
}

/** Block absmax quantized to 8 bits: `absmax[b] = f32(map[qabsmax[b]] * nestedAbsmax[b >> 8]) + offset`. */
export interface DoubleQuantized4bitTensor extends Quantized4bitTensorBase {
  doubleQuant: true;
  /** u8 [blocks]. */
  qabsmax: Tensor;
  /** f32 [ceil(blocks / 256)]. */
  nestedAbsmax: Tensor;
  /** float32 mean of the absmax values (a host number: it travels as a kernel uniform). */
  offset: number;
  /** Blocks per nested group (256). */
  nestedBlocksize: number;
}

export type Quantized4bitTensor = PlainQuantized4bitTensor | DoubleQuantized4bitTensor;

/** Number of elements of the original tensor. */
export function quantizedNumel(q: Pick<Quantized4bitTensor, 'shape'>): number {
  return q.shape.reduce((a, b) => a * b, 1);
}

/** The tensors a quantized weight holds. */
export function quantizedParts(q: Quantized4bitTensor): Tensor[] {
  return q.doubleQuant ? [q.packed, q.qabsmax, q.nestedAbsmax] : [q.packed, q.absmax];
}

/** Frees the tensors of a quantized weight. */
export function disposeQuantized4bit(q: Quantized4bitTensor): void {
  for (const t of quantizedParts(q)) t.dispose();
}

/** GPU bytes of a quantized weight as the runtime accounts them (each part rounded up to 4 bytes). */
export function quantizedDeviceBytes(q: Quantized4bitTensor): number {
  return quantizedParts(q).reduce((s, t) => s + Math.max(4, t.byteLength), 0);
}

export interface UploadOptions {
  /** Memory tag of the uploaded tensors (default 'weights'). */
  tag?: MemoryTag;
  /** Name prefix for the tensors (e.g. the weight's key). */
  name?: string;
}

/**
 * Uploads a host `Quantized4bit` (from `quantize`, `readQuantized4bit` or a bitsandbytes
 * checkpoint) as it is: nothing is dequantized. Sizes are checked against the shape.
 */
export function uploadQuantized4bit(rt: Runtime, q: Quantized4bit, options: UploadOptions = {}): Quantized4bitTensor {
  const n = numel(q);
  if (q.packed.length !== (n + 1) >> 1) {
    throw new ShapeMismatchError({ op: 'uploadQuantized4bit packed', expected: [(n + 1) >> 1], got: [q.packed.length], detail: `shape [${q.shape.join(', ')}]` });
  }
  // blockAbsmax checks the absmax or nested state lengths.
  blockAbsmax(q);
  const tag = options.tag ?? 'weights';
  const name = (part: string) => (options.name ? `${options.name}.${part}` : part);
  const base = {
    quantType: q.quantType,
    blocksize: q.blocksize,
    shape: [...q.shape],
    dtype: q.dtype,
  };
  const packed = fromArray(rt, q.packed, [q.packed.length], 'u8', { tag, name: name('packed') }).keep();
  if (!q.doubleQuant) {
    const absmax = fromArray(rt, q.absmax, [q.absmax.length], 'f32', { tag, name: name('absmax') }).keep();
    return { ...base, doubleQuant: false, packed, absmax };
  }
  const qabsmax = fromArray(rt, q.qabsmax, [q.qabsmax.length], 'u8', { tag, name: name('qabsmax') }).keep();
  const nestedAbsmax = fromArray(rt, q.nestedAbsmax, [q.nestedAbsmax.length], 'f32', { tag, name: name('nested_absmax') }).keep();
  return { ...base, doubleQuant: true, packed, qabsmax, nestedAbsmax, offset: Math.fround(q.offset), nestedBlocksize: q.nestedBlocksize };
}

/** Reads a quantized weight back into the root export's host form (e.g. to write a bitsandbytes checkpoint). */
export async function downloadQuantized4bit(q: Quantized4bitTensor): Promise<Quantized4bit> {
  const base = { quantType: q.quantType, blocksize: q.blocksize, shape: [...q.shape], dtype: q.dtype };
  const packed = await bytesOf(q.packed);
  if (!q.doubleQuant) return { ...base, doubleQuant: false, packed, absmax: await floatsOf(q.absmax) };
  return {
    ...base,
    doubleQuant: true,
    packed,
    qabsmax: await bytesOf(q.qabsmax),
    nestedAbsmax: await floatsOf(q.nestedAbsmax),
    offset: q.offset,
    nestedBlocksize: q.nestedBlocksize,
  };
}

async function bytesOf(t: Tensor): Promise<Uint8Array> {
  if (t.dtype !== 'u8') throw new DTypeError({ op: 'downloadQuantized4bit', expected: 'u8', got: t.dtype });
  return (await t.toArray()) as Uint8Array;
}

async function floatsOf(t: Tensor): Promise<Float32Array> {
  if (t.dtype !== 'f32') throw new DTypeError({ op: 'downloadQuantized4bit', expected: 'f32', got: t.dtype });
  return (await t.toArray()) as Float32Array;
}
