// Lays out a GGUF v3 file: header, typed metadata, tensor infos, then the tensor data, each
// tensor at an offset aligned to `general.alignment`; serializes it in memory.
import { FormatError } from '@peft-ts/errors';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgmlType, GgufValueType, ggmlTensorBytes, type GgmlTypeName } from '../format/constants.js';
import type { GgufMetadata, GgufValue } from '../format/value.js';

export interface GgufTensorSource {
  name: string;
  /** Row-major shape, outermost first (as PyTorch and safetensors write it). */
  shape: readonly number[];
  type: GgmlTypeName;
  /** The encoded bytes (see `encodeTensor`), produced when the writer reaches this tensor. */
  data: () => Promise<Uint8Array> | Uint8Array;
}

export interface WriteGgufResult {
  bytes: number;
  tensors: number;
}

/** Little-endian byte sink that grows as needed. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly text = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  u64(v: number | bigint): void { this.reserve(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  i64(v: number | bigint): void { this.reserve(8); this.view.setBigInt64(this.length, BigInt(v), true); this.length += 8; }
  string(s: string): void {
    const bytes = this.text.encode(s);
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array { return this.buf.subarray(0, this.length); }
}

function writeScalar(w: ByteWriter, type: GgufValueType, v: unknown, where: string): void {
  const num = (): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) && type !== GgufValueType.FLOAT32 && type !== GgufValueType.FLOAT64) throw new FormatError({ file: '<gguf metadata>', field: where, expected: 'a number', got: v });
    return v;
  };
  switch (type) {
    case GgufValueType.UINT8: return w.u8(num());
    case GgufValueType.INT8: return w.i8(num());
    case GgufValueType.UINT16: return w.u16(num());
    case GgufValueType.INT16: return w.i16(num());
    case GgufValueType.UINT32: return w.u32(num());
    case GgufValueType.INT32: return w.i32(num());
    case GgufValueType.FLOAT32: return w.f32(num());
    case GgufValueType.FLOAT64: return w.f64(num());
    case GgufValueType.UINT64: return w.u64(typeof v === 'bigint' ? v : num());
    case GgufValueType.INT64: return w.i64(typeof v === 'bigint' ? v : num());
    case GgufValueType.BOOL: return w.u8(v === true ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof v !== 'string') throw new FormatError({ file: '<gguf metadata>', field: where, expected: 'a string', got: v });
      return w.string(v);
    default:
      throw new FormatError({ file: '<gguf metadata>', field: where, expected: 'a scalar value type', got: type });
  }
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  w.u32(v.type);
  if (v.type === GgufValueType.ARRAY) {
    w.u32(v.itemType);
    w.u64(v.value.length);
    v.value.forEach((item, i) => writeScalar(w, v.itemType, item, `${key}[${i}]`));
  } else writeScalar(w, v.type, v.value, key);
}

/** Serializes everything before the tensor data; returns it with each tensor's data offset. */
export function ggufHeader(metadata: GgufMetadata, tensors: readonly Omit<GgufTensorSource, 'data'>[]): { header: Uint8Array; offsets: number[]; sizes: number[]; alignment: number } {
  const alignmentValue = metadata.get('general.alignment');
  const alignment = alignmentValue && typeof alignmentValue.value === 'number' ? alignmentValue.value : GGUF_DEFAULT_ALIGNMENT;
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, key, value);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (seen.has(t.name)) throw new FormatError({ file: '<gguf tensors>', field: t.name, expected: 'a unique tensor name', got: 'a repeated name' });
    seen.add(t.name);
    const elements = t.shape.reduce((a, b) => a * b, 1);
    w.string(t.name);
    w.u32(t.shape.length);
    // GGUF lists dimensions innermost first (ggml's ne[0] is the row length).
    for (let i = t.shape.length - 1; i >= 0; i -= 1) w.u64(t.shape[i] ?? 1);
    w.u32(GgmlType[t.type]);
    w.u64(offset);
    offsets.push(offset);
    const size = ggmlTensorBytes(t.type, elements);
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }
  w.pad(alignment);
  return { header: w.bytes(), offsets, sizes, alignment };
}

/** The size in bytes of a GGUF file as written: header, then aligned tensor slots. */
export function ggufFileBytes(headerBytes: number, offsets: readonly number[], sizes: readonly number[], alignment: number): number {
  // The last tensor is padded too, so the data section is a whole number of aligned slots.
  return offsets.length ? headerBytes + (offsets.at(-1) ?? 0) + Math.ceil((sizes.at(-1) ?? 0) / alignment) * alignment : headerBytes;
}

/** Checks one tensor's encoded bytes against its type and shape. */
export function checkTensorBytes(file: string, t: Omit<GgufTensorSource, 'data'>, data: Uint8Array, expected: number): void {
  if (data.byteLength !== expected) {
    throw new FormatError({ file, field: `tensor "${t.name}"`, expected: `${expected} bytes of ${t.type} for shape [${t.shape.join(', ')}]`, got: `${data.byteLength} bytes` });
  }
}

/**
 * A whole GGUF file in memory (e.g. for a download in a browser); each tensor's data is produced
 * in turn. `writeGguf(path, ...)` in `@peft-ts/gguf/node` writes the same bytes to disk.
 */
export async function serializeGguf(metadata: GgufMetadata, tensors: readonly GgufTensorSource[]): Promise<Uint8Array> {
  const { header, offsets, sizes, alignment } = ggufHeader(metadata, tensors);
  const out = new Uint8Array(ggufFileBytes(header.length, offsets, sizes, alignment));
  out.set(header, 0);
  for (const [i, t] of tensors.entries()) {
    const data = await t.data();
    checkTensorBytes('(in-memory gguf)', t, data, sizes[i] ?? 0);
    out.set(data, header.length + (offsets[i] ?? 0));
  }
  return out;
}
