// One open .safetensors file: the header is read and validated on open, and each tensor's
// bytes are fetched on demand from its ByteSource, so the file is never read whole.
import { DTypeError, FormatError, PeftError, UnsupportedError } from '@peft-ts/errors';
import { bf16ToF32, f16ToF32 } from '../convert/half-float.js';
import { DTYPE_SIZE, viewAs, type HostTensor } from '../format/dtype.js';
import { decodeHeader, readHeaderLength, tensorField, type TensorInfo } from '../format/header.js';
import type { ByteSource } from '../io/byte-source.js';
import type { TensorSource } from '../write/tensor-source.js';

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class SafetensorsFile {
  /** The source's name: the file's path when opened from disk. */
  readonly path: string;
  readonly metadata: Record<string, string> | undefined;
  /** Length of the JSON header in bytes (the value of the 8-byte prefix). */
  readonly headerLength: number;
  /** Size of the whole file in bytes. */
  readonly fileSize: number;
  readonly #source: ByteSource;
  readonly #tensors: Map<string, TensorInfo>;
  #closed = false;

  protected constructor(
    source: ByteSource,
    header: { headerLength: number; metadata?: Record<string, string>; tensors: TensorInfo[] },
  ) {
    this.path = source.name;
    this.#source = source;
    this.fileSize = source.size;
    this.headerLength = header.headerLength;
    this.metadata = header.metadata;
    this.#tensors = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /**
   * Reads and validates the header of `source`; tensor bytes stay where they are until asked
   * for. The file owns the source from then on: close() closes it, as does a failed open.
   */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    try {
      const size = source.size;
      const prefix = new Uint8Array(8);
      if (size >= 8) prefix.set(await readExactly(source, 0, 8, 'header length'));
      const headerLength = readHeaderLength(prefix, size, source.name);
      const json = await readExactly(source, 8, headerLength, 'header');
      const header = decodeHeader(json, size - 8 - headerLength, source.name);
      return new SafetensorsFile(source, header);
    } catch (error) {
      await source.close?.();
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
    return readExactly(this.#source, info.offset, info.byteLength, tensorField(name));
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
    await this.#source.close?.();
  }
}

/** `length` bytes at `offset`; a short read (the source shrank after opening) is reported against `field`. */
async function readExactly(source: ByteSource, offset: number, length: number, field: string): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const bytes = await source.read(offset, length);
  if (bytes.byteLength !== length) {
    throw new FormatError({
      file: source.name,
      field,
      expected: `${length} bytes at file offset ${offset}`,
      got: `end of file after ${bytes.byteLength} bytes (the file was truncated after it was opened)`,
    });
  }
  return bytes;
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
