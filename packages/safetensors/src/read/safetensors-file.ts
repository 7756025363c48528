// One open .safetensors file: the header is read and validated on open, and each tensor's
// bytes are fetched on demand with positioned reads, so the file is never read whole.
import { open, type FileHandle } from 'node:fs/promises';
import { DTypeError, FormatError, PeftError, UnsupportedError } from '@peft-ts/errors';
import { bf16ToF32, f16ToF32 } from '../convert/half-float.js';
import { DTYPE_SIZE, viewAs, type HostTensor } from '../format/dtype.js';
import { decodeHeader, readHeaderLength, tensorField, type TensorInfo } from '../format/header.js';
import type { TensorSource } from '../write/tensor-source.js';
import { checkChunkBytes, DEFAULT_READ_CHUNK_BYTES, readAt } from './positioned-read.js';

export interface OpenOptions {
  /** Largest single positioned read in bytes (default 1 GiB, at most just under 2 GiB). */
  readChunkBytes?: number;
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string> | undefined;
  /** Length of the JSON header in bytes (the value of the 8-byte prefix). */
  readonly headerLength: number;
  /** Size of the whole file in bytes. */
  readonly fileSize: number;
  readonly #handle: FileHandle;
  readonly #tensors: Map<string, TensorInfo>;
  readonly #chunkBytes: number;
  #closed = false;

  private constructor(
    path: string,
    handle: FileHandle,
    fileSize: number,
    header: { headerLength: number; metadata?: Record<string, string>; tensors: TensorInfo[] },
    chunkBytes: number,
  ) {
    this.path = path;
    this.#handle = handle;
    this.fileSize = fileSize;
    this.headerLength = header.headerLength;
    this.metadata = header.metadata;
    this.#tensors = new Map(header.tensors.map((t) => [t.name, t]));
    this.#chunkBytes = chunkBytes;
  }

  /** Opens `path`, reads and validates its header; tensor bytes stay on disk until asked for. */
  static async open(path: string, options: OpenOptions = {}): Promise<SafetensorsFile> {
    const chunkBytes = checkChunkBytes(options.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES);
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const prefix = new Uint8Array(8);
      if (size >= 8) await readAt(handle, prefix, 0, chunkBytes, { file: path, field: 'header length' });
      const headerLength = readHeaderLength(prefix, size, path);
      const json = new Uint8Array(headerLength);
      await readAt(handle, json, 8, chunkBytes, { file: path, field: 'header' });
      const header = decodeHeader(json, size - 8 - headerLength, path);
      return new SafetensorsFile(path, handle, size, header, chunkBytes);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Tensor names in header order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Where a tensor lives in the file; throws FormatError naming the file and tensor if absent. */
  info(name: string): TensorInfo {
    const info = this.#tensors.get(name);
    if (!info) {
      throw new FormatError({
        file: this.path,
        field: tensorField(name),
        expected: `a tensor of that name (the file has ${this.#tensors.size})`,
        got: 'no such tensor',
      });
    }
    return { ...info, shape: [...info.shape] };
  }

  /** Every tensor's info, in header order. */
  tensors(): TensorInfo[] {
    return this.names().map((name) => this.info(name));
  }

  /** A tensor's raw little-endian bytes, in a buffer of their own. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    if (this.#closed) {
      throw new PeftError('CLOSED', `${this.path}: cannot read ${tensorField(name)}: the file was closed`);
    }
    const bytes = new Uint8Array(info.byteLength);
    await readAt(this.#handle, bytes, info.offset, this.#chunkBytes, { file: this.path, field: tensorField(name) });
    return bytes;
  }

  /** A tensor decoded to the typed array of its dtype (see HostTensor). */
  async read(name: string): Promise<HostTensor> {
    const info = this.info(name);
    if (!littleEndianHost && DTYPE_SIZE[info.dtype] > 1) {
      throw new UnsupportedError({ what: 'host byte order', got: 'big-endian', supported: ['little-endian'], where: this.path });
    }
    const bytes = await this.readBytes(name);
    return { dtype: info.dtype, shape: info.shape, data: viewAs(info.dtype, bytes) };
  }

  /** A floating-point tensor as f32: F16/BF16 widened exactly, F64 rounded to nearest. */
  async readF32(name: string): Promise<Float32Array> {
    const tensor = await this.read(name);
    return toF32(tensor, `readF32(${JSON.stringify(name)}) in ${this.path}`);
  }

  /** Lazy sources for every tensor, in header order, to pass to a writer. */
  sources(): TensorSource[] {
    return this.names().map((name) => {
      const { dtype, shape } = this.info(name);
      return { name, dtype, shape, data: () => this.readBytes(name) };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

export function toF32(tensor: HostTensor, op: string): Float32Array {
  switch (tensor.dtype) {
    case 'F32':
      return tensor.data as Float32Array;
    case 'F64':
      return Float32Array.from(tensor.data as Float64Array);
    case 'F16':
      return f16ToF32(tensor.data as Uint16Array);
    case 'BF16':
      return bf16ToF32(tensor.data as Uint16Array);
    default:
      throw new DTypeError({ op, expected: 'F32, F64, F16 or BF16', got: tensor.dtype });
  }
}
