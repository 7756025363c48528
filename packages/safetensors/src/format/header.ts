// Parsing and validating a .safetensors header (8-byte length, JSON), and encoding one the way
// the reference writer does, so written files are byte-identical to Python's.
import { FormatError } from '@peft-ts/errors';
import { DTYPES, DTYPE_SIZE, DTYPE_WRITE_RANK, isDType, type DType } from './dtype.js';

/** The reference reader refuses headers above this many bytes; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const TENSOR_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

/** One tensor's entry in a header, with its absolute position in the file. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** absolute byte offset in the file */
  offset: number;
  byteLength: number;
}

export interface ParsedHeader {
  headerLength: number;
  metadata?: Record<string, string>;
  tensors: TensorInfo[];
}

export const tensorField = (name: string, part?: string): string =>
  `tensor ${JSON.stringify(name)}${part ? `.${part}` : ''}`;

/**
 * Reads the 8-byte little-endian header length and checks it against the limit and the file
 * size before anything else is read.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new FormatError({
      file,
      field: 'header length',
      expected: 'a file of at least 8 bytes starting with the little-endian u64 header length',
      got: `a file of ${Math.min(fileSize, prefix.byteLength)} bytes`,
    });
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError({
      file,
      field: 'header length',
      expected: `at most ${MAX_HEADER_BYTES} bytes`,
      got: `${n} bytes`,
    });
  }
  const headerLength = Number(n);
  if (8 + headerLength > fileSize) {
    throw new FormatError({
      file,
      field: 'header length',
      expected: `a header that fits in the file (at most ${fileSize - 8} bytes after the 8-byte prefix)`,
      got: `${headerLength} bytes, which runs past the end of the ${fileSize}-byte file`,
    });
  }
  return headerLength;
}

/**
 * Parses a header from a buffer holding at least its first 8 + N bytes. `fileSize` is the size
 * of the whole file (defaults to `bytes.byteLength`, i.e. the buffer is the whole file); the
 * data section is what lies between the header and the end of the file, and the tensors must
 * cover it exactly.
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  file = '(buffer)',
  options: { fileSize?: number } = {},
): ParsedHeader {
  const fileSize = options.fileSize ?? bytes.byteLength;
  const headerLength = readHeaderLength(bytes, fileSize, file);
  if (bytes.byteLength < 8 + headerLength) {
    throw new FormatError({
      file,
      field: 'header',
      expected: `${headerLength} header bytes after the 8-byte prefix`,
      got: `${bytes.byteLength - 8} bytes in the buffer`,
    });
  }
  return decodeHeader(bytes.subarray(8, 8 + headerLength), fileSize - 8 - headerLength, file);
}

/** Validates the JSON header bytes against a data section of `dataSize` bytes. */
export function decodeHeader(json: Uint8Array, dataSize: number, file: string): ParsedHeader {
  const headerLength = json.byteLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json);
  } catch (cause) {
    throw new FormatError({ file, field: 'header', expected: 'UTF-8 text', got: 'invalid UTF-8 bytes', cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new FormatError({
      file,
      field: 'header',
      expected: 'a JSON object',
      got: `text that is not JSON (${(cause as Error).message}): ${preview(text)}`,
      cause,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FormatError({
      file,
      field: 'header',
      expected: 'a JSON object mapping tensor names to {dtype, shape, data_offsets}',
      got: `${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}: ${preview(text)}`,
    });
  }
  const root = parsed as Record<string, unknown>;
  // JSON.parse keeps only the last of repeated keys and moves integer-like keys first, so the
  // key order and uniqueness come from a scan of the text itself.
  const keys = scanKeys(text, file);

  let metadata: Record<string, string> | undefined;
  const tensors: (TensorInfo & { begin: number; end: number })[] = [];
  for (const name of keys) {
    const entry = root[name];
    if (name === METADATA_KEY) {
      metadata = parseMetadata(entry, file);
      continue;
    }
    tensors.push(parseEntry(name, entry, 8 + headerLength, file));
  }

  checkLayout(tensors, dataSize, file);
  const result: ParsedHeader = {
    headerLength,
    tensors: tensors.map(({ name, dtype, shape, offset, byteLength }) => ({ name, dtype, shape, offset, byteLength })),
  };
  if (metadata !== undefined) result.metadata = metadata;
  return result;
}

function parseMetadata(value: unknown, file: string): Record<string, string> | undefined {
  // The reference reader takes `null` as "no metadata".
  if (value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new FormatError({ file, field: METADATA_KEY, expected: 'an object of string values', got: shown(value) });
  }
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') {
      throw new FormatError({
        file,
        field: `${METADATA_KEY}.${JSON.stringify(key)}`,
        expected: 'a string value',
        got: v === null ? 'null' : `${Array.isArray(v) ? 'an array' : `a ${typeof v}`} ${clip(JSON.stringify(v))}`,
      });
    }
    // defineProperty, so a key such as "__proto__" is kept as data rather than ignored.
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function parseEntry(name: string, entry: unknown, dataStart: number, file: string): TensorInfo & { begin: number; end: number } {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new FormatError({
      file,
      field: tensorField(name),
      expected: 'an object {dtype, shape, data_offsets}',
      got: shown(entry),
    });
  }
  const record = entry as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!TENSOR_KEYS.has(key)) {
      throw new FormatError({
        file,
        field: tensorField(name, key),
        expected: 'only the keys dtype, shape, data_offsets',
        got: `an unknown key ${JSON.stringify(key)}`,
      });
    }
  }
  for (const key of TENSOR_KEYS) {
    if (!(key in record)) {
      throw new FormatError({ file, field: tensorField(name, key), expected: `a ${key} entry`, got: 'none' });
    }
  }

  const dtype = record.dtype;
  if (!isDType(dtype)) {
    throw new FormatError({
      file,
      field: tensorField(name, 'dtype'),
      expected: `one of ${DTYPES.join(', ')}`,
      got: shown(dtype),
    });
  }

  const shape = record.shape;
  if (!Array.isArray(shape)) {
    throw new FormatError({ file, field: tensorField(name, 'shape'), expected: 'an array of non-negative integers', got: shown(shape) });
  }
  let elements = 1;
  for (const [i, dim] of shape.entries()) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw new FormatError({
        file,
        field: tensorField(name, `shape[${i}]`),
        expected: 'a non-negative integer',
        got: `${JSON.stringify(dim)} in shape ${JSON.stringify(shape)}`,
      });
    }
    elements *= dim;
  }
  if (!Number.isSafeInteger(elements * DTYPE_SIZE[dtype])) {
    throw new FormatError({
      file,
      field: tensorField(name, 'shape'),
      expected: `a shape whose byte size fits in ${Number.MAX_SAFE_INTEGER}`,
      got: shown(shape),
    });
  }

  const offsets = record.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o): o is number => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new FormatError({
      file,
      field: tensorField(name, 'data_offsets'),
      expected: 'a pair [begin, end] of non-negative integers',
      got: shown(offsets),
    });
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) {
    throw new FormatError({
      file,
      field: tensorField(name, 'data_offsets'),
      expected: 'begin <= end',
      got: `[${begin}, ${end}]`,
    });
  }
  const byteLength = elements * DTYPE_SIZE[dtype];
  if (end - begin !== byteLength) {
    throw new FormatError({
      file,
      field: tensorField(name, 'data_offsets'),
      expected: `${byteLength} bytes (shape [${shape.join(', ')}] x ${DTYPE_SIZE[dtype]}-byte ${dtype})`,
      got: `[${begin}, ${end}], ${end - begin} bytes`,
    });
  }
  return { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength, begin, end };
}

/** The tensors, sorted by (begin, end), must tile the data section with no gap or overlap. */
function checkLayout(tensors: readonly { name: string; begin: number; end: number }[], dataSize: number, file: string): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: { name: string; end: number } | undefined;
  for (const t of sorted) {
    if (t.end > dataSize) {
      throw new FormatError({
        file,
        field: tensorField(t.name, 'data_offsets'),
        expected: `offsets within the ${dataSize}-byte data section`,
        got: `[${t.begin}, ${t.end}], past its end`,
      });
    }
    if (t.begin !== cursor) {
      const after = previous ? `where ${JSON.stringify(previous.name)} ends` : 'the start of the data section';
      throw new FormatError({
        file,
        field: tensorField(t.name, 'data_offsets'),
        expected: `to begin at ${cursor} (${after})`,
        got:
          t.begin < cursor
            ? `[${t.begin}, ${t.end}], overlapping ${previous ? JSON.stringify(previous.name) : 'the previous tensor'} by ${cursor - t.begin} bytes`
            : `[${t.begin}, ${t.end}], leaving a gap of ${t.begin - cursor} bytes`,
      });
    }
    cursor = t.end;
    previous = t;
  }
  if (cursor !== dataSize) {
    throw new FormatError({
      file,
      field: 'data section',
      expected: `tensors covering all ${dataSize} bytes after the header`,
      got: previous
        ? `the last tensor ${JSON.stringify(previous.name)} ending at ${cursor}, leaving ${dataSize - cursor} unclaimed bytes`
        : `no tensors and ${dataSize} unclaimed bytes`,
    });
  }
}

/**
 * Lists the top-level keys of a JSON object text in order, and rejects a key repeated in the
 * top object or in any object directly inside it (a tensor entry or the metadata). The text
 * has already passed JSON.parse, so only strings and brackets need tracking.
 */
function scanKeys(text: string, file: string): string[] {
  const top: string[] = [];
  const frames: { object: boolean; keys: Set<string>; expectKey: boolean; label: string }[] = [];
  let lastTopKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const frame = frames.at(-1);
      if (frame?.object && frame.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        frame.expectKey = false;
        if (frame.keys.has(key)) {
          const field =
            frames.length === 1
              ? key === METADATA_KEY
                ? METADATA_KEY
                : tensorField(key)
              : frame.label === METADATA_KEY
                ? `${METADATA_KEY}.${JSON.stringify(key)}`
                : `${frame.label}.${key}`;
          throw new FormatError({ file, field, expected: 'each key once', got: `${JSON.stringify(key)} repeated` });
        }
        frame.keys.add(key);
        if (frames.length === 1) {
          top.push(key);
          lastTopKey = key;
        }
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const label =
        frames.length === 1
          ? lastTopKey === METADATA_KEY
            ? METADATA_KEY
            : tensorField(lastTopKey)
          : (frames.at(-1)?.label ?? '');
      frames.push({ object: c === 0x7b, keys: new Set(), expectKey: c === 0x7b, label });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
    } else if (c === 0x2c /* , */) {
      const frame = frames.at(-1);
      if (frame?.object) frame.expectKey = true;
    }
  }
  return top;
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function preview(text: string): string {
  return JSON.stringify(clip(text.trim()));
}

/** Orders two strings by code point, which is the byte order of their UTF-8 encodings. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate stands for a code point above U+FFFF, above every BMP character.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** A tensor's place in a header being written. */
export interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: readonly number[];
  byteLength: number;
}

export interface EncodedHeader<T extends HeaderEntry = HeaderEntry> {
  /** 8-byte length prefix followed by the space-padded JSON. */
  bytes: Uint8Array;
  /** The entries in file order, with their offsets relative to the data section. */
  layout: (T & { begin: number; end: number })[];
  dataSize: number;
}

/** Sorts entries as the reference writer does: dtype rank descending, then name by code point. */
export function writeOrder<T extends { name: string; dtype: DType }>(entries: readonly T[]): T[] {
  return [...entries].sort(
    (a, b) => DTYPE_WRITE_RANK[b.dtype] - DTYPE_WRITE_RANK[a.dtype] || compareCodePoints(a.name, b.name),
  );
}

/**
 * Encodes a header: compact JSON with `__metadata__` first, tensors in write order, padded with
 * spaces to a multiple of 8 bytes so the data section starts aligned.
 */
export function encodeHeader<T extends HeaderEntry>(
  entries: readonly T[],
  metadata: Record<string, string> | undefined,
): EncodedHeader<T> {
  const parts: string[] = [];
  if (metadata !== undefined) {
    parts.push(
      `"${METADATA_KEY}":{${Object.entries(metadata)
        .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
        .join(',')}}`,
    );
  }
  const layout: EncodedHeader<T>['layout'] = [];
  let offset = 0;
  for (const entry of writeOrder(entries)) {
    const begin = offset;
    offset += entry.byteLength;
    layout.push({ ...entry, begin, end: offset });
    parts.push(
      `${JSON.stringify(entry.name)}:{"dtype":"${entry.dtype}","shape":[${entry.shape.join(',')}],"data_offsets":[${begin},${offset}]}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const bytes = new Uint8Array(8 + padded);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.byteLength);
  return { bytes, layout, dataSize: offset };
}

/** A value for a message: strings quoted, so an empty or odd string stays visible. */
export function shown(value: unknown): unknown {
  return typeof value === 'string' ? JSON.stringify(value) : value;
}
