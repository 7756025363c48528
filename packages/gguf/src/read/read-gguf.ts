// Reads a GGUF v2/v3 file's header, metadata and tensor infos from a ByteSource with ranged
// reads (the tensor data is fetched only on request), checking every length against the size.
import { FormatError } from '@peft-ts/errors';
import type { ByteSource } from '@peft-ts/safetensors';
import { GGML_TYPE_NAMES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, ggmlTensorBytes, type GgmlTypeName } from '../format/constants.js';
import { decodeTensor } from '../format/encode.js';

export interface GgufTensorInfo {
  name: string;
  /** Row-major shape, outermost first (the reverse of GGUF's on-disk order). */
  shape: number[];
  /** The ggml type number, and its name when this package knows it. */
  typeId: number;
  type: GgmlTypeName | null;
  /** Absolute position of the tensor's first byte in the file. */
  offset: number;
}

export interface GgufFileInfo {
  version: number;
  metadata: Map<string, unknown>;
  /** The GGUF value type of each metadata entry (and, for arrays, of their items). */
  metadataTypes: Map<string, { type: number; itemType?: number }>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
  fileSize: number;
}

/** Buffered ranged reader over a ByteSource. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  pos = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly size: number;
  private readonly path: string;

  constructor(private readonly source: ByteSource) {
    this.size = source.size;
    this.path = source.name;
  }

  private async need(n: number, field: string): Promise<DataView> {
    if (this.pos + n > this.size) throw new FormatError({ file: this.path, field, expected: `${n} more bytes at offset ${this.pos}`, got: `end of file at ${this.size}` });
    if (this.pos < this.start || this.pos + n > this.start + this.buf.length) {
      const length = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      this.buf = await this.source.read(this.pos, length);
      this.start = this.pos;
      if (this.buf.length < n) throw new FormatError({ file: this.path, field, expected: `${n} more bytes at offset ${this.pos}`, got: 'end of file (the file was truncated after it was opened)' });
    }
    const view = new DataView(this.buf.buffer, this.pos - this.start, n);
    this.pos += n;
    return view;
  }

  async u32(field: string): Promise<number> { return (await this.need(4, field)).getUint32(0, true); }
  async u64(field: string): Promise<number> {
    const v = (await this.need(8, field)).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError({ file: this.path, field, expected: 'a count below 2^53', got: v });
    return Number(v);
  }
  async string(field: string): Promise<string> {
    const n = await this.u64(field);
    const view = await this.need(n, field);
    try {
      return this.decoder.decode(new Uint8Array(view.buffer, view.byteOffset, n));
    } catch (cause) {
      throw new FormatError({ file: this.path, field, expected: 'UTF-8 text', got: 'invalid bytes', cause });
    }
  }

  async scalar(type: number, field: string): Promise<unknown> {
    switch (type) {
      case GgufValueType.UINT8: return (await this.need(1, field)).getUint8(0);
      case GgufValueType.INT8: return (await this.need(1, field)).getInt8(0);
      case GgufValueType.UINT16: return (await this.need(2, field)).getUint16(0, true);
      case GgufValueType.INT16: return (await this.need(2, field)).getInt16(0, true);
      case GgufValueType.UINT32: return (await this.need(4, field)).getUint32(0, true);
      case GgufValueType.INT32: return (await this.need(4, field)).getInt32(0, true);
      case GgufValueType.FLOAT32: return (await this.need(4, field)).getFloat32(0, true);
      case GgufValueType.FLOAT64: return (await this.need(8, field)).getFloat64(0, true);
      case GgufValueType.UINT64: return (await this.need(8, field)).getBigUint64(0, true);
      case GgufValueType.INT64: return (await this.need(8, field)).getBigInt64(0, true);
      case GgufValueType.BOOL: return (await this.need(1, field)).getUint8(0) !== 0;
      case GgufValueType.STRING: return this.string(field);
      default: throw new FormatError({ file: this.path, field, expected: 'a GGUF value type 0-12', got: type });
    }
  }
}

/** Parses everything up to the tensor data. */
export async function readGgufInfoFrom(source: ByteSource): Promise<GgufFileInfo> {
  const path = source.name;
  const fileSize = source.size;
  const c = new Cursor(source);
  const magic = await c.u32('magic');
  if (magic !== GGUF_MAGIC) throw new FormatError({ file: path, field: 'magic', expected: '"GGUF"', got: `0x${magic.toString(16)}` });
  const version = await c.u32('version');
  if (version !== 2 && version !== 3) throw new FormatError({ file: path, field: 'version', expected: '2 or 3', got: version });
  const tensorCount = await c.u64('tensor_count');
  const kvCount = await c.u64('metadata_kv_count');
  const metadata = new Map<string, unknown>();
  const metadataTypes = new Map<string, { type: number; itemType?: number }>();
  for (let i = 0; i < kvCount; i += 1) {
    const key = await c.string(`metadata[${i}].key`);
    const type = await c.u32(key);
    if (type === GgufValueType.ARRAY) {
      const itemType = await c.u32(key);
      const n = await c.u64(key);
      if (n > fileSize) throw new FormatError({ file: path, field: key, expected: 'an array no longer than the file', got: n });
      const items: unknown[] = new Array<unknown>(n);
      for (let k = 0; k < n; k += 1) items[k] = await c.scalar(itemType, key);
      metadata.set(key, items);
      metadataTypes.set(key, { type, itemType });
    } else {
      metadata.set(key, await c.scalar(type, key));
      metadataTypes.set(key, { type });
    }
  }
  const alignmentValue = metadata.get('general.alignment');
  const alignment = typeof alignmentValue === 'number' ? alignmentValue : GGUF_DEFAULT_ALIGNMENT;
  const raw: { name: string; shape: number[]; typeId: number; rel: number }[] = [];
  for (let i = 0; i < tensorCount; i += 1) {
    const name = await c.string(`tensor[${i}].name`);
    const dims = await c.u32(`tensor "${name}".n_dims`);
    const ne: number[] = [];
    for (let d = 0; d < dims; d += 1) ne.push(await c.u64(`tensor "${name}".ne`));
    const typeId = await c.u32(`tensor "${name}".type`);
    const rel = await c.u64(`tensor "${name}".offset`);
    raw.push({ name, shape: ne.reverse(), typeId, rel });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors = raw.map(({ name, shape, typeId, rel }) => {
    const type = GGML_TYPE_NAMES[typeId] ?? null;
    const offset = dataOffset + rel;
    if (rel % alignment !== 0) throw new FormatError({ file: path, field: `tensor "${name}".offset`, expected: `a multiple of ${alignment}`, got: rel });
    const end = type ? offset + ggmlTensorBytes(type, shape.reduce((a, b) => a * b, 1)) : offset;
    if (end > fileSize) throw new FormatError({ file: path, field: `tensor "${name}"`, expected: `data ending inside the file (${fileSize} bytes)`, got: `data ending at ${end}` });
    return { name, shape, typeId, type, offset };
  });
  return { version, metadata, metadataTypes, tensors, alignment, dataOffset, fileSize };
}

/** Reads one tensor (f32, f16, bf16 or q8_0) as f32 values. */
export async function readGgufTensorFrom(source: ByteSource, info: GgufTensorInfo): Promise<Float32Array> {
  const path = source.name;
  if (!info.type) throw new FormatError({ file: path, field: `tensor "${info.name}".type`, expected: 'F32, F16, BF16 or Q8_0', got: info.typeId });
  const elements = info.shape.reduce((a, b) => a * b, 1);
  const length = ggmlTensorBytes(info.type, elements);
  const bytes = await source.read(info.offset, length);
  if (bytes.length !== length) {
    throw new FormatError({ file: path, field: `tensor "${info.name}"`, expected: `${length} bytes at offset ${info.offset}`, got: `end of file after ${bytes.length} bytes` });
  }
  return decodeTensor(bytes, info.type, elements);
}
