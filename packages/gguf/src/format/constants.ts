// GGUF v3 constants: the metadata value types and the ggml tensor types this package writes,
// numbered as the format defines them.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types, by their on-disk numbers. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** The ggml tensor types written and read here, by their on-disk numbers. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q8_0: 8,
  BF16: 30,
} as const;
export type GgmlTypeName = keyof typeof GgmlType;

export const GGML_TYPE_NAMES: Readonly<Record<number, GgmlTypeName>> = Object.freeze({ 0: 'F32', 1: 'F16', 8: 'Q8_0', 30: 'BF16' });

/** Elements per block and bytes per block of each type (q8_0: an f16 scale and 32 int8). */
export const GGML_BLOCK: Readonly<Record<GgmlTypeName, { elements: number; bytes: number }>> = Object.freeze({
  F32: { elements: 1, bytes: 4 },
  F16: { elements: 1, bytes: 2 },
  BF16: { elements: 1, bytes: 2 },
  Q8_0: { elements: 32, bytes: 34 },
});

/** Bytes of a tensor of `type` with `elements` elements; q8_0 needs a row length divisible by 32. */
export function ggmlTensorBytes(type: GgmlTypeName, elements: number): number {
  const b = GGML_BLOCK[type];
  return Math.ceil(elements / b.elements) * b.bytes;
}
