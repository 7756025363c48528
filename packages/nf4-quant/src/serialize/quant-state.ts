// bitsandbytes' serialized Linear4bit state: the tensors stored beside `P.weight` and the
// `quant_state.bitsandbytes__<type>` JSON, written and read key for key.
import { FormatError } from '@peft-ts/errors';
import type { DType, TensorInfo, TensorSource } from '@peft-ts/safetensors';
import { DYNAMIC_MAP_SIGNED } from '../codes/dynamic-map.js';
import { QUANT_TYPES, quantMapTable, type QuantType } from '../codes/four-bit-codes.js';
import { BLOCKSIZES, NESTED_BLOCKSIZE } from '../quantize/quantize-4bit.js';
import type { Quantized4bit, SourceDType } from '../quantize/types.js';
import { PyFloat, pyJsonDumps, type PyJsonObject } from './py-json.js';

const SOURCE_DTYPES: readonly SourceDType[] = ['float32', 'float16', 'bfloat16'];
const QUANT_STATE_INFIX = '.quant_state.bitsandbytes__';

/** The key of the JSON state tensor for a weight key (e.g. `...q_proj.weight`). */
export function quantStateKey(weightKey: string, quantType: QuantType): string {
  return `${weightKey}${QUANT_STATE_INFIX}${quantType}`;
}

/** If `key` is a quant-state key, the weight key it belongs to and its quant type suffix. */
export function parseQuantStateKey(key: string): { weightKey: string; suffix: string } | undefined {
  const at = key.lastIndexOf(QUANT_STATE_INFIX);
  if (at <= 0) return undefined;
  return { weightKey: key.slice(0, at), suffix: key.slice(at + QUANT_STATE_INFIX.length) };
}

/** The suffixes bitsandbytes stores beside a quantized weight key. */
export const QUANT_STATE_SUFFIXES: readonly string[] = Object.freeze(['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map']);

/**
 * The JSON bitsandbytes stores: Python's json.dumps of the non-tensor fields, in its key order,
 * with `nested_offset` printed as Python prints the float32 value widened to a double.
 */
export function quantStateJson(q: Quantized4bit): string {
  const state: PyJsonObject = {
    quant_type: q.quantType,
    blocksize: q.blocksize,
    dtype: q.dtype,
    shape: [...q.shape],
  };
  if (q.doubleQuant) {
    state.nested_blocksize = q.nestedBlocksize;
    state.nested_dtype = 'float32';
    state.nested_offset = new PyFloat(q.offset);
  }
  return pyJsonDumps(state);
}

/**
 * The tensors of one quantized weight under `weightKey`, as bitsandbytes' state dict holds
 * them: packed U8 [(n+1)/2, 1], absmax (U8 with double quant, F32 without), quant_map,
 * nested_absmax and nested_quant_map (double quant only) and the JSON state as U8.
 */
export function quantizedTensorSources(weightKey: string, q: Quantized4bit): TensorSource[] {
  const json = new TextEncoder().encode(quantStateJson(q));
  const out: TensorSource[] = [{ name: weightKey, dtype: 'U8', shape: [q.packed.length, 1], data: q.packed }];
  if (q.doubleQuant) {
    out.push({ name: `${weightKey}.absmax`, dtype: 'U8', shape: [q.qabsmax.length], data: q.qabsmax });
  } else {
    out.push({ name: `${weightKey}.absmax`, dtype: 'F32', shape: [q.absmax.length], data: q.absmax });
  }
  out.push({ name: `${weightKey}.quant_map`, dtype: 'F32', shape: [16], data: quantMapTable(q.quantType).slice() });
  if (q.doubleQuant) {
    out.push({ name: `${weightKey}.nested_absmax`, dtype: 'F32', shape: [q.nestedAbsmax.length], data: q.nestedAbsmax });
    out.push({ name: `${weightKey}.nested_quant_map`, dtype: 'F32', shape: [256], data: DYNAMIC_MAP_SIGNED.slice() });
  }
  out.push({ name: quantStateKey(weightKey, q.quantType), dtype: 'U8', shape: [json.byteLength], data: json });
  return out;
}

/** What reading a quantized weight needs from a checkpoint or a single file. */
export interface TensorReader {
  /** The file path, for messages, when the reader is a single file. */
  readonly path?: string;
  has(name: string): boolean;
  info(name: string): TensorInfo & { file?: string };
  readBytes(name: string): Promise<Uint8Array>;
}

/** The parsed JSON state, before the tensors are read. */
export interface QuantStateHeader {
  quantType: QuantType;
  blocksize: number;
  dtype: SourceDType;
  shape: number[];
  nested: { blocksize: number; offset: number } | undefined;
}

/**
 * Parses and checks the JSON state stored under `key` (whose suffix names the quant type).
 * Every problem is a FormatError naming `file` and the key.
 */
export function parseQuantStateJson(bytes: Uint8Array, key: string, file: string): QuantStateHeader {
  const field = key;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new FormatError({ file, field, expected: 'UTF-8 text', got: `${bytes.byteLength} bytes that are not UTF-8`, cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file, field, expected: 'a JSON object', got: `${excerpt(text)} (${(cause as Error).message})`, cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FormatError({ file, field, expected: 'a JSON object', got: excerpt(text) });
  }
  const state = parsed as Record<string, unknown>;
  const at = (name: string) => `${field} -> "${name}"`;

  const quantType = state.quant_type;
  if (quantType !== 'nf4' && quantType !== 'fp4') {
    throw new FormatError({ file, field: at('quant_type'), expected: `one of ${QUANT_TYPES.join(', ')}`, got: show(quantType) });
  }
  const suffix = parseQuantStateKey(key)?.suffix;
  if (suffix !== quantType) {
    throw new FormatError({
      file,
      field: at('quant_type'),
      expected: `the type the key names (${JSON.stringify(suffix)})`,
      got: show(quantType),
    });
  }
  const blocksize = state.blocksize;
  if (typeof blocksize !== 'number' || !BLOCKSIZES.includes(blocksize)) {
    throw new FormatError({ file, field: at('blocksize'), expected: `one of ${BLOCKSIZES.join(', ')}`, got: show(blocksize) });
  }
  const dtype = state.dtype;
  if (typeof dtype !== 'string' || !SOURCE_DTYPES.includes(dtype as SourceDType)) {
    throw new FormatError({ file, field: at('dtype'), expected: `one of ${SOURCE_DTYPES.join(', ')}`, got: show(dtype) });
  }
  const shape = state.shape;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) > 0)) {
    throw new FormatError({ file, field: at('shape'), expected: 'a non-empty list of positive integers', got: shape });
  }

  const nestedKeys = ['nested_blocksize', 'nested_dtype', 'nested_offset'].filter((k) => k in state);
  let nested: QuantStateHeader['nested'];
  if (nestedKeys.length > 0) {
    if (nestedKeys.length !== 3) {
      const missing = ['nested_blocksize', 'nested_dtype', 'nested_offset'].filter((k) => !(k in state));
      throw new FormatError({ file, field: at(missing[0] ?? ''), expected: 'all three nested_* fields together', got: 'missing' });
    }
    if (state.nested_blocksize !== NESTED_BLOCKSIZE) {
      throw new FormatError({ file, field: at('nested_blocksize'), expected: String(NESTED_BLOCKSIZE), got: show(state.nested_blocksize) });
    }
    if (state.nested_dtype !== 'float32') {
      throw new FormatError({ file, field: at('nested_dtype'), expected: '"float32"', got: show(state.nested_dtype) });
    }
    const offset = state.nested_offset;
    if (typeof offset !== 'number' || !Number.isFinite(offset)) {
      throw new FormatError({ file, field: at('nested_offset'), expected: 'a finite number', got: show(offset) });
    }
    // bitsandbytes turns it back into a float32 tensor, rounding as this does.
    nested = { blocksize: NESTED_BLOCKSIZE, offset: Math.fround(offset) };
  }
  return { quantType, blocksize, dtype: dtype as SourceDType, shape: shape as number[], nested };
}

/** Strings quoted, so `"6"` and `6` read differently in messages. */
export function show(value: unknown): unknown {
  return typeof value === 'string' ? JSON.stringify(value) : value;
}

function excerpt(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/**
 * Reads the quantized weight stored under `weightKey` (the key of the packed data, e.g.
 * `model.layers.0.mlp.down_proj.weight`), checking every tensor's dtype and length against
 * the JSON state. The packed data may be stored in another dtype (`bnb_4bit_quant_storage`);
 * its bytes are taken as they are.
 */
export async function readQuantized4bit(reader: TensorReader, weightKey: string): Promise<Quantized4bit> {
  const stateKey = QUANT_TYPES.map((t) => quantStateKey(weightKey, t)).find((k) => reader.has(k));
  const fallback = reader.path ?? '(checkpoint)';
  const fileOf = (name: string) => (reader.has(name) ? (reader.info(name).file ?? fallback) : fallback);
  if (stateKey === undefined) {
    throw new FormatError({
      file: fileOf(weightKey),
      field: `${weightKey}.quant_state.bitsandbytes__*`,
      expected: `a quant state tensor for ${QUANT_TYPES.map((t) => `bitsandbytes__${t}`).join(' or ')}`,
      got: 'none',
    });
  }
  const file = fileOf(stateKey);
  const header = parseQuantStateJson(await readPart(reader, stateKey, { file, dtypes: ['U8'] }), stateKey, file);
  const n = header.shape.reduce((a, b) => a * b, 1);
  const blocks = Math.ceil(n / header.blocksize);
  const why = `for shape [${header.shape.join(', ')}] in blocks of ${header.blocksize}`;
  const part = (suffix: string) => `${weightKey}.${suffix}`;

  const packed = await readPart(reader, weightKey, { file: fileOf(weightKey), bytes: (n + 1) >> 1, why });
  await readPart(reader, part('quant_map'), { file: fileOf(part('quant_map')), dtypes: ['F32'], elements: 16 });
  const base = { quantType: header.quantType, blocksize: header.blocksize, shape: header.shape, dtype: header.dtype, packed };
  if (!header.nested) {
    const absmax = await readPart(reader, part('absmax'), { file: fileOf(part('absmax')), dtypes: ['F32'], elements: blocks, why });
    return { ...base, doubleQuant: false, absmax: f32View(absmax) };
  }
  const groups = Math.ceil(blocks / header.nested.blocksize);
  const qabsmax = await readPart(reader, part('absmax'), { file: fileOf(part('absmax')), dtypes: ['U8'], elements: blocks, why });
  const nestedAbsmax = await readPart(reader, part('nested_absmax'), {
    file: fileOf(part('nested_absmax')),
    dtypes: ['F32'],
    elements: groups,
    why: `${why}, groups of ${header.nested.blocksize} blocks`,
  });
  await readPart(reader, part('nested_quant_map'), { file: fileOf(part('nested_quant_map')), dtypes: ['F32'], elements: 256 });
  return {
    ...base,
    doubleQuant: true,
    qabsmax,
    nestedAbsmax: f32View(nestedAbsmax),
    offset: header.nested.offset,
    nestedBlocksize: header.nested.blocksize,
  };
}

interface PartSpec {
  file: string;
  /** Accepted dtypes (any when absent, for packed data in a storage dtype). */
  dtypes?: readonly DType[];
  /** Required element count, for tensors of a fixed dtype. */
  elements?: number;
  /** Required byte length, for tensors whose dtype may vary. */
  bytes?: number;
  /** Where the required size comes from, for the message. */
  why?: string;
}

async function readPart(reader: TensorReader, name: string, spec: PartSpec): Promise<Uint8Array> {
  const { file } = spec;
  if (!reader.has(name)) {
    throw new FormatError({ file, field: name, expected: 'a tensor stored beside the quantized weight', got: 'no such tensor' });
  }
  const info = reader.info(name);
  if (spec.dtypes && !spec.dtypes.includes(info.dtype)) {
    throw new FormatError({ file, field: name, expected: `dtype ${spec.dtypes.join(' or ')}`, got: info.dtype });
  }
  const because = spec.why ? ` ${spec.why}` : '';
  const count = info.shape.reduce((a, b) => a * b, 1);
  if (spec.elements !== undefined && count !== spec.elements) {
    throw new FormatError({
      file,
      field: name,
      expected: `${spec.elements} elements${because}`,
      got: `${count} (shape [${info.shape.join(', ')}])`,
    });
  }
  if (spec.bytes !== undefined && info.byteLength !== spec.bytes) {
    throw new FormatError({
      file,
      field: name,
      expected: `${spec.bytes} bytes of packed 4-bit data${because}`,
      got: `${info.byteLength} bytes (${info.dtype} [${info.shape.join(', ')}])`,
    });
  }
  return reader.readBytes(name);
}

function f32View(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}
