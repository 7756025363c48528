// Serialising .safetensors files: the header as the reference writer lays it out, then each
// tensor's bytes in file order, into memory or a WritableTree.
import { DTypeError, FormatError } from '@peft-ts/errors';
import { DTYPE_ARRAY, DTYPE_SIZE, DTYPES, isDType } from '../format/dtype.js';
import { encodeHeader, shown, tensorField, type HeaderEntry } from '../format/header.js';
import type { WritableTree } from '../io/byte-source.js';
import type { TensorData, TensorSource } from './tensor-source.js';

export interface WriteOptions {
  /** String key/value pairs stored as `__metadata__` (written first in the header). */
  metadata?: Record<string, string>;
}

const METADATA_KEY = '__metadata__';

/** Drains an iterable or async iterable of sources into an array (the data stays lazy). */
export async function collectSources(tensors: Iterable<TensorSource> | AsyncIterable<TensorSource>): Promise<TensorSource[]> {
  const out: TensorSource[] = [];
  for await (const t of tensors) out.push(t);
  return out;
}

/** A header entry that remembers the source it came from. */
export type SourceEntry = HeaderEntry & { source: TensorSource };

/** Checks names, dtypes, shapes and any eager data, and returns the header entries. */
export function describeSources(sources: readonly TensorSource[], file: string): SourceEntry[] {
  const seen = new Set<string>();
  return sources.map((source) => {
    const { name, dtype, shape } = source;
    if (typeof name !== 'string' || name === METADATA_KEY || /\p{Cs}/u.test(name)) {
      throw new FormatError({
        file,
        field: 'tensor name',
        expected: `a well-formed string other than "${METADATA_KEY}"`,
        got: shown(name),
      });
    }
    if (seen.has(name)) {
      throw new FormatError({ file, field: tensorField(name), expected: 'each tensor name once', got: `${JSON.stringify(name)} repeated` });
    }
    seen.add(name);
    if (!isDType(dtype)) {
      throw new FormatError({ file, field: tensorField(name, 'dtype'), expected: `one of ${DTYPES.join(', ')}`, got: shown(dtype) });
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError({ file, field: tensorField(name, 'shape'), expected: 'an array of non-negative integers', got: shown(shape) });
    }
    const byteLength = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    if (!Number.isSafeInteger(byteLength)) {
      throw new FormatError({ file, field: tensorField(name, 'shape'), expected: `a byte size below ${Number.MAX_SAFE_INTEGER}`, got: shown(shape) });
    }
    const entry: SourceEntry = { name, dtype, shape: [...shape], byteLength, source };
    if (typeof source.data !== 'function') dataBytes(entry, source.data, file);
    return entry;
  });
}

/** The bytes of `data`, after checking that they are what the entry's dtype and shape need. */
export function dataBytes(entry: HeaderEntry, data: unknown, file: string): Uint8Array {
  if (!ArrayBuffer.isView(data)) {
    throw new FormatError({ file, field: tensorField(entry.name, 'data'), expected: 'bytes (an ArrayBufferView)', got: shown(data) });
  }
  // Raw bytes suit any dtype; any other typed array must be the one the dtype decodes to, so a
  // Float32Array handed in for an I32 tensor is caught rather than written as integers.
  const raw = data instanceof Uint8Array || data instanceof DataView;
  if (!raw && data.constructor !== DTYPE_ARRAY[entry.dtype]) {
    throw new DTypeError({
      op: `write ${tensorField(entry.name)} to ${file}`,
      expected: `${DTYPE_ARRAY[entry.dtype].name} or raw bytes for ${entry.dtype}`,
      got: data.constructor.name,
    });
  }
  if (data.byteLength !== entry.byteLength) {
    throw new FormatError({
      file,
      field: tensorField(entry.name, 'data'),
      expected: `${entry.byteLength} bytes (shape [${entry.shape.join(', ')}] x ${DTYPE_SIZE[entry.dtype]}-byte ${entry.dtype})`,
      got: `${data.byteLength} bytes`,
    });
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function checkMetadata(metadata: unknown, file: string): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new FormatError({ file, field: METADATA_KEY, expected: 'an object of string values', got: shown(metadata) });
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new FormatError({ file, field: `${METADATA_KEY}.${JSON.stringify(key)}`, expected: 'a string value', got: shown(value) });
    }
  }
  return metadata as Record<string, string>;
}

/** The bytes of a .safetensors file, in memory; every tensor's data must be given eagerly. */
export function serializeSafetensors(tensors: readonly TensorSource[], options: WriteOptions = {}): Uint8Array {
  const file = '(in-memory safetensors)';
  const metadata = checkMetadata(options.metadata, file);
  const entries = describeSources(tensors, file);
  const header = encodeHeader(entries, metadata);
  const out = new Uint8Array(header.bytes.byteLength + header.dataSize);
  out.set(header.bytes, 0);
  for (const entry of header.layout) {
    const data = entry.source.data;
    if (typeof data === 'function') {
      throw new FormatError({
        file,
        field: tensorField(entry.name, 'data'),
        expected: 'bytes given up front (use writeSafetensors for lazily produced data)',
        got: 'a function',
      });
    }
    out.set(dataBytes(entry, data, file), header.bytes.byteLength + entry.begin);
  }
  return out;
}

/**
 * Serialises `tensors` (lazy data included, fetched one at a time) and writes the bytes as
 * `name` in `tree`. The whole file is built in memory first; for files larger than memory use
 * the streaming writer of `@peft-ts/safetensors/node`.
 */
export async function writeSafetensorsTo(
  tree: WritableTree,
  name: string,
  tensors: Iterable<TensorSource> | AsyncIterable<TensorSource>,
  options: WriteOptions = {},
): Promise<Uint8Array> {
  const sources = await collectSources(tensors);
  describeSources(sources, name);
  const eager: TensorSource[] = [];
  for (const source of sources) {
    const data: TensorData = typeof source.data === 'function' ? await source.data() : source.data;
    eager.push({ ...source, data });
  }
  const bytes = serializeSafetensors(eager, options);
  await tree.write(name, bytes);
  return bytes;
}
