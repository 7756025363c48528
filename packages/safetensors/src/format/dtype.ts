// The element types a .safetensors file may hold here, their sizes, and the typed array each
// one decodes to. The serialisation order mirrors the reference writer's dtype ranking.

/** Element types this package reads and writes. F8_* are kept as raw bytes. */
export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
});

/** Every supported dtype name, for messages and validation. */
export const DTYPES: readonly DType[] = Object.freeze(Object.keys(DTYPE_SIZE) as DType[]);

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, value);
}

/**
 * The reference writer lays tensors out by dtype rank, highest first, then by name; the rank
 * is the declaration order of its dtype enum (ascending alignment). Matching it is what makes
 * our files byte-identical to the ones Python's safetensors writes.
 */
export const DTYPE_WRITE_RANK: Readonly<Record<DType, number>> = Object.freeze({
  BOOL: 0,
  U8: 1,
  I8: 2,
  F8_E5M2: 3,
  F8_E4M3: 4,
  I16: 5,
  F16: 7,
  BF16: 8,
  I32: 9,
  F32: 11,
  F64: 12,
  I64: 13,
});

/** The typed array a decoded tensor of each dtype comes back as. */
export type HostTensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A decoded tensor: F32->Float32Array, F64->Float64Array, F16/BF16->Uint16Array (raw words), I64->BigInt64Array, I32->Int32Array, I16->Int16Array, I8->Int8Array, U8/BOOL/F8_*->Uint8Array. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: HostTensorData;
}

type TypedArrayConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => HostTensorData;

export const DTYPE_ARRAY: Readonly<Record<DType, TypedArrayConstructor & { readonly name: string }>> = Object.freeze({
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
});

/** Views `bytes` (which must own a whole ArrayBuffer from offset 0 or be suitably aligned) as the dtype's typed array. */
export function viewAs(dtype: DType, bytes: Uint8Array): HostTensorData {
  const Ctor = DTYPE_ARRAY[dtype];
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteOffset % size !== 0) {
    // A typed array needs an element-aligned offset; copy into a fresh buffer when it is not.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Ctor(copy.buffer, 0, bytes.byteLength / size);
  }
  return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
}
