// Typed metadata values: each carries its GGUF type, so a u32 is never written as an i32 or a
// float by accident (llama.cpp reads several keys with a fixed type and rejects the others).
import { GgufValueType } from './constants.js';

export type GgufScalarType = Exclude<GgufValueType, typeof GgufValueType.ARRAY | typeof GgufValueType.STRING | typeof GgufValueType.BOOL>;

export type GgufValue =
  | { type: GgufScalarType; value: number | bigint }
  | { type: typeof GgufValueType.BOOL; value: boolean }
  | { type: typeof GgufValueType.STRING; value: string }
  | { type: typeof GgufValueType.ARRAY; itemType: GgufValueType; value: readonly (number | bigint | boolean | string)[] };

export type GgufMetadata = Map<string, GgufValue>;

/** Constructors for metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  u64: (value: number | bigint): GgufValue => ({ type: GgufValueType.UINT64, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  strArray: (value: readonly string[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value }),
  f32Array: (value: readonly number[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value }),
  i32Array: (value: readonly number[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value }),
};

/** The plain JS value of a metadata entry (bigints for 64-bit integers). */
export function plainValue(v: GgufValue): unknown {
  return v.value;
}
