// Tensor creation: allocation from the pool, host uploads, constant fills.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { storageBytes, type DType, isFloat } from './dtype.js';
import { GRID_HELPERS, grid1d, type KernelSpec } from './kernel.js';
import type { MemoryTag } from './memory.js';
import type { Runtime } from './runtime.js';
import { checkShape, f32ToBf16Bits, f32ToF16Bits, numelOf, Storage, Tensor, type Shape, type TensorOptions } from './tensor.js';

/** An uninitialised tensor (contents undefined until a kernel writes it). */
export function empty(rt: Runtime, shape: Shape, dtype: DType = 'f32', options: TensorOptions = {}): Tensor {
  checkShape('empty', shape);
  const bytes = storageBytes(dtype, numelOf(shape));
  const tag: MemoryTag = options.tag ?? 'activations';
  const { buffer, size } = rt.pool.acquire(Math.max(4, bytes), tag, `tensor [${shape.join(', ')}] ${dtype}`);
  return new Tensor(rt, new Storage(rt, buffer, size, Math.max(4, bytes), tag), shape, dtype, 0, options);
}

export type HostData = ArrayLike<number> | Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;

/**
 * A tensor from host data. For f32/i32/u32/u8 the values are taken as they are; for f16/bf16 a
 * Uint16Array is taken as raw words and any other array is rounded (to nearest even) from f32.
 */
export function fromArray(rt: Runtime, data: HostData, shape: Shape, dtype: DType = 'f32', options: TensorOptions = {}): Tensor {
  checkShape('fromArray', shape);
  const n = numelOf(shape);
  if (data.length !== n) {
    throw new ShapeMismatchError({ op: 'fromArray', expected: `${n} elements for shape [${shape.join(', ')}]`, got: `${data.length} elements` });
  }
  let bytes: ArrayBufferView;
  switch (dtype) {
    case 'f32':
      bytes = data instanceof Float32Array ? data : Float32Array.from(data);
      break;
    case 'i32':
      bytes = data instanceof Int32Array ? data : Int32Array.from(data);
      break;
    case 'u32':
      bytes = data instanceof Uint32Array ? data : Uint32Array.from(data);
      break;
    case 'u8':
      bytes = data instanceof Uint8Array ? data : Uint8Array.from(data);
      break;
    case 'f16':
    case 'bf16': {
      if (data instanceof Uint16Array) bytes = data;
      else {
        const conv = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
        const words = new Uint16Array(n);
        for (let i = 0; i < n; i++) words[i] = conv(data[i] ?? 0);
        bytes = words;
      }
      break;
    }
  }
  const t = empty(rt, shape, dtype, options);
  rt.writeBytes(t.binding(), bytes);
  return t;
}

function fillSpec(dtype: DType): KernelSpec {
  // Fills whole 32-bit words; `word` is the bit pattern (two f16/bf16 or four u8 values per word).
  return {
    name: 'fill',
    variant: dtype,
    bindings: ['read_write'],
    uniforms: [
      { name: 'words', type: 'u32' },
      { name: 'word', type: 'u32' },
    ],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
struct Params { words: u32, word: u32, }
@group(0) @binding(1) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i < u.words) { out[i] = u.word; }
}`,
  };
}

/** The 32-bit word that holds `value` once (f32/i32/u32) or repeated (f16/bf16 twice, u8 four times). */
function fillWord(value: number, dtype: DType): number {
  const dv = new DataView(new ArrayBuffer(4));
  switch (dtype) {
    case 'f32':
      dv.setFloat32(0, value, true);
      break;
    case 'i32':
      dv.setInt32(0, value, true);
      break;
    case 'u32':
      dv.setUint32(0, value >>> 0, true);
      break;
    case 'f16':
    case 'bf16': {
      const h = dtype === 'f16' ? f32ToF16Bits(value) : f32ToBf16Bits(value);
      dv.setUint16(0, h, true);
      dv.setUint16(2, h, true);
      break;
    }
    case 'u8':
      for (let i = 0; i < 4; i++) dv.setUint8(i, value & 0xff);
      break;
  }
  return dv.getUint32(0, true);
}

/** Writes `value` into every element of `t` (recorded in order with other GPU work). */
export function fillInPlace(t: Tensor, value: number): Tensor {
  if (!isFloat(t.dtype) && !Number.isInteger(value)) throw new DTypeError({ op: 'fill', expected: 'an integer value for ' + t.dtype, got: String(value) });
  const words = t.byteLength / 4;
  const word = fillWord(value, t.dtype);
  if (word === 0) t.rt.clear(t.binding(), t.byteLength);
  else t.rt.dispatch(fillSpec(t.dtype), [t.binding()], [words, word], grid1d(words, 256));
  return t;
}

export function full(rt: Runtime, shape: Shape, value: number, dtype: DType = 'f32', options: TensorOptions = {}): Tensor {
  return fillInPlace(empty(rt, shape, dtype, options), value);
}

export function zeros(rt: Runtime, shape: Shape, dtype: DType = 'f32', options: TensorOptions = {}): Tensor {
  return full(rt, shape, 0, dtype, options);
}

export function ones(rt: Runtime, shape: Shape, dtype: DType = 'f32', options: TensorOptions = {}): Tensor {
  return full(rt, shape, 1, dtype, options);
}

export function zerosLike(t: Tensor, options: TensorOptions = {}): Tensor {
  return zeros(t.rt, t.shape, t.dtype, options);
}

export function onesLike(t: Tensor, options: TensorOptions = {}): Tensor {
  return ones(t.rt, t.shape, t.dtype, options);
}

/** A scalar f32 tensor. */
export function scalar(rt: Runtime, value: number, options: TensorOptions = {}): Tensor {
  return full(rt, [], value, 'f32', options);
}
