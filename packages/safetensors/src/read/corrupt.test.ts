// A corpus of broken files, written to a temp dir: each must fail with a FormatError that names
// the file, the tensor or header part (`field`), and says what was expected and what was found.
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { Checkpoint, parseSafetensorsHeader, SafetensorsFile, serializeSafetensors, writeCheckpoint, writeSafetensors } from '../node/index.js';

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'safetensors-corrupt-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A file from a header (object or raw text) and a data section, with an optional length override. */
function build(header: unknown, dataBytes: number, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  for (let i = 8 + json.byteLength; i < out.byteLength; i++) out[i] = i & 0xff;
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

async function captured(run: () => Promise<unknown>): Promise<FormatError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    return error as FormatError;
  }
  throw new Error('expected a FormatError, but the call succeeded');
}

interface Case {
  name: string;
  bytes: () => Promise<Uint8Array> | Uint8Array;
  field: string;
  message: RegExp[];
}

const valid = () =>
  serializeSafetensors([
    { name: 'a', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'b', dtype: 'I32', shape: [3], data: new Int32Array([5, 6, 7]) },
  ]);

const cases: Case[] = [
  { name: 'empty file', bytes: () => new Uint8Array(0), field: 'header length', message: [/at least 8 bytes/, /got a file of 0 bytes/] },
  { name: 'shorter than 8 bytes', bytes: () => new Uint8Array(5), field: 'header length', message: [/got a file of 5 bytes/] },
  {
    name: 'header length past the end of the file',
    bytes: () => build({ a: f32([1], 0, 4) }, 4, 1000n),
    field: 'header length',
    message: [/expected a header that fits in the file/, /got 1000 bytes, which runs past the end/],
  },
  {
    name: 'header length 2^40',
    bytes: () => build({}, 0, 2n ** 40n),
    field: 'header length',
    message: [/expected at most 100000000 bytes/, /got 1099511627776 bytes/],
  },
  {
    name: 'header length just over the 100 MB limit',
    bytes: () => build({}, 0, 100_000_001n),
    field: 'header length',
    message: [/expected at most 100000000 bytes, got 100000001 bytes/],
  },
  {
    name: 'header that is not UTF-8',
    bytes: () => {
      const b = build('{"a":1}', 0);
      b[10] = 0xff;
      return b;
    },
    field: 'header',
    message: [/expected UTF-8 text, got invalid UTF-8 bytes/],
  },
  { name: 'non-JSON header', bytes: () => build('{"a": {"dtype": "F32",', 0), field: 'header', message: [/expected a JSON object/, /not JSON/] },
  { name: 'header not an object', bytes: () => build('[1, 2, 3]', 0), field: 'header', message: [/got an array/] },
  { name: 'header a bare string', bytes: () => build('"hello"', 0), field: 'header', message: [/got a string/] },
  {
    name: 'tensor entry not an object',
    bytes: () => build({ w: [1, 2] }, 0),
    field: 'tensor "w"',
    message: [/expected an object \{dtype, shape, data_offsets\}, got \[1, 2\]/],
  },
  {
    name: 'unknown dtype',
    bytes: () => build({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4),
    field: 'tensor "w".dtype',
    message: [/expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2/, /got "F33"/],
  },
  {
    name: 'dtype the package does not handle (U32)',
    bytes: () => build({ w: { dtype: 'U32', shape: [1], data_offsets: [0, 4] } }, 4),
    field: 'tensor "w".dtype',
    message: [/got "U32"/],
  },
  {
    name: 'negative shape',
    bytes: () => build({ w: f32([-1, 4], 0, 16) }, 16),
    field: 'tensor "w".shape[0]',
    message: [/expected a non-negative integer, got -1 in shape \[-1,4\]/],
  },
  {
    name: 'non-integer shape',
    bytes: () => build({ w: f32([2, 2.5], 0, 20) }, 20),
    field: 'tensor "w".shape[1]',
    message: [/expected a non-negative integer, got 2.5/],
  },
  {
    name: 'shape not an array',
    bytes: () => build({ w: { dtype: 'F32', shape: '4', data_offsets: [0, 16] } }, 16),
    field: 'tensor "w".shape',
    message: [/expected an array of non-negative integers, got "4"/],
  },
  {
    name: 'shape whose size overflows',
    bytes: () => build({ w: f32([2 ** 40, 2 ** 40], 0, 16) }, 16),
    field: 'tensor "w".shape',
    message: [/byte size fits/],
  },
  {
    name: 'missing data_offsets',
    bytes: () => build({ w: { dtype: 'F32', shape: [1] } }, 4),
    field: 'tensor "w".data_offsets',
    message: [/expected a data_offsets entry, got none/],
  },
  {
    name: 'data_offsets not a pair of integers',
    bytes: () => build({ w: { dtype: 'F32', shape: [1], data_offsets: [0, '4'] } }, 4),
    field: 'tensor "w".data_offsets',
    message: [/expected a pair \[begin, end\] of non-negative integers, got \[0, "4"\]/],
  },
  {
    name: 'data_offsets end before begin',
    bytes: () => build({ w: f32([0], 8, 4) }, 8),
    field: 'tensor "w".data_offsets',
    message: [/expected begin <= end, got \[8, 4\]/],
  },
  {
    name: 'unknown key in a tensor entry',
    bytes: () => build({ w: { ...f32([1], 0, 4), offsets: [0, 4] } }, 4),
    field: 'tensor "w".offsets',
    message: [/expected only the keys dtype, shape, data_offsets, got an unknown key "offsets"/],
  },
  {
    name: 'shape and dtype size disagree with the offsets',
    bytes: () => build({ w: f32([3], 0, 8) }, 8),
    field: 'tensor "w".data_offsets',
    message: [/expected 12 bytes \(shape \[3\] x 4-byte F32\), got \[0, 8\], 8 bytes/],
  },
  {
    name: 'overlapping offsets',
    bytes: () => build({ a: f32([4], 0, 16), b: f32([4], 8, 24) }, 24),
    field: 'tensor "b".data_offsets',
    message: [/expected to begin at 16 \(where "a" ends\)/, /got \[8, 24\], overlapping "a" by 8 bytes/],
  },
  {
    name: 'a gap between tensors',
    bytes: () => build({ a: f32([4], 0, 16), b: f32([4], 20, 36) }, 36),
    field: 'tensor "b".data_offsets',
    message: [/expected to begin at 16/, /leaving a gap of 4 bytes/],
  },
  {
    name: 'first tensor not at the start of the data section',
    bytes: () => build({ a: f32([4], 4, 20) }, 20),
    field: 'tensor "a".data_offsets',
    message: [/expected to begin at 0 \(the start of the data section\)/, /gap of 4 bytes/],
  },
  {
    name: 'offsets past the end of the data section',
    bytes: () => build({ a: f32([4], 0, 16), b: f32([4], 16, 32) }, 24),
    field: 'tensor "b".data_offsets',
    message: [/expected offsets within the 24-byte data section, got \[16, 32\], past its end/],
  },
  {
    name: 'truncated data',
    bytes: () => valid().subarray(0, valid().byteLength - 3),
    field: 'tensor "b".data_offsets',
    message: [/within the 25-byte data section/],
  },
  {
    name: 'trailing bytes after the last tensor',
    bytes: () => {
      const v = valid();
      const out = new Uint8Array(v.byteLength + 8);
      out.set(v);
      return out;
    },
    field: 'data section',
    message: [/expected tensors covering all 36 bytes/, /the last tensor "b" ending at 28, leaving 8 unclaimed bytes/],
  },
  {
    name: 'data but no tensors',
    bytes: () => build({}, 8),
    field: 'data section',
    message: [/got no tensors and 8 unclaimed bytes/],
  },
  {
    name: 'metadata with a non-string value',
    bytes: () => build({ __metadata__: { format: 'pt', step: 3 }, a: f32([1], 0, 4) }, 4),
    field: '__metadata__."step"',
    message: [/expected a string value, got a number 3/],
  },
  {
    name: 'metadata not an object',
    bytes: () => build({ __metadata__: 'pt', a: f32([1], 0, 4) }, 4),
    field: '__metadata__',
    message: [/expected an object of string values, got "pt"/],
  },
  {
    name: 'a tensor name repeated',
    bytes: () => build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
    field: 'tensor "a"',
    message: [/expected each key once, got "a" repeated/],
  },
  {
    name: 'a key repeated inside a tensor entry',
    bytes: () => build('{"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}}', 4),
    field: 'tensor "a".dtype',
    message: [/"dtype" repeated/],
  },
];

describe('corrupt files', () => {
  it('has a corpus of at least 15 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases.map((c) => [c.name, c]))('%s', async (_, c) => {
    const bytes = await c.bytes();
    const path = join(tmp, `${c.name.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
    await writeFile(path, bytes);

    const fromFile = await captured(() => SafetensorsFile.open(path));
    expect(fromFile.file).toBe(path);
    expect(fromFile.field).toBe(c.field);
    expect(fromFile.message.startsWith(`${path}: ${c.field}: expected `)).toBe(true);
    for (const pattern of c.message) expect(fromFile.message).toMatch(pattern);

    // The in-memory parser reaches the same verdict on the same bytes.
    const fromBytes = await captured(() => Promise.resolve(parseSafetensorsHeader(bytes, path)));
    expect(fromBytes.field).toBe(c.field);
    expect(fromBytes.message).toBe(fromFile.message);
  });

  it('accepts tensors listed out of offset order and keeps header order, integer-like names included', async () => {
    const path = join(tmp, 'out-of-order.safetensors');
    // Raw text: an object literal would put the integer-like keys first.
    const entry = (shape: number, begin: number) =>
      `{"dtype":"F32","shape":[${shape}],"data_offsets":[${begin},${begin + shape * 4}]}`;
    await writeFile(path, build(`{"10":${entry(1, 8)},"b":${entry(2, 0)},"2":${entry(1, 12)}}`, 16));
    const file = await SafetensorsFile.open(path);
    expect(file.names()).toEqual(['10', 'b', '2']);
    expect(file.info('10').offset).toBe(file.info('b').offset + 8);
    await file.close();
  });

  it('keeps every metadata key as data, "__proto__" included', async () => {
    const path = join(tmp, 'proto-metadata.safetensors');
    await writeFile(path, build('{"__metadata__":{"__proto__":"x","format":"pt"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1));
    const file = await SafetensorsFile.open(path);
    expect(Object.keys(file.metadata ?? {})).toEqual(['__proto__', 'format']);
    expect(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value).toBe('x');
    await file.close();
  });

  it('info() of an absent tensor names the file and the tensor', async () => {
    const path = join(tmp, 'valid.safetensors');
    await writeFile(path, valid());
    const file = await SafetensorsFile.open(path);
    const error = await captured(() => Promise.resolve(file.info('missing.weight')));
    expect(error.file).toBe(path);
    expect(error.field).toBe('tensor "missing.weight"');
    expect(error.message).toMatch(/expected a tensor of that name \(the file has 2\), got no such tensor/);
    await file.close();
    await expect(file.readBytes('a')).rejects.toThrow(/cannot read tensor "a": the file was closed/);
  });

  it('a file truncated after it was opened fails the read with the tensor named', async () => {
    const path = join(tmp, 'shrinks.safetensors');
    await writeFile(path, valid());
    const file = await SafetensorsFile.open(path);
    await truncate(path, file.info('b').offset + 4);
    const error = await captured(() => file.readBytes('b'));
    expect(error.field).toBe('tensor "b"');
    expect(error.message).toMatch(/expected 12 bytes at file offset \d+, got end of file after 4 bytes/);
    await file.close();
  });
});

describe('corrupt sharded checkpoints', () => {
  async function sharded(name: string): Promise<string> {
    const dir = join(tmp, name);
    const u8 = (n: string, fill: number) => ({ name: n, dtype: 'U8' as const, shape: [4], data: new Uint8Array(4).fill(fill) });
    // Two shards: a and b in the first, c and d in the second.
    await writeCheckpoint(dir, [u8('a', 1), u8('b', 2), u8('c', 3), u8('d', 4)], { maxShardBytes: 8 });
    return dir;
  }
  const indexOf = (dir: string) => join(dir, 'model.safetensors.index.json');

  it('an index naming a missing shard: the error names the shard file and a tensor mapped to it', async () => {
    const dir = await sharded('missing-shard');
    await rm(join(dir, 'model-00002-of-00002.safetensors'));
    const error = await captured(() => Checkpoint.open(dir));
    expect(error.file).toBe(indexOf(dir));
    expect(error.field).toBe('weight_map["c"]');
    expect(error.message).toMatch(/expected a shard file that exists beside the index, got "model-00002-of-00002.safetensors", which is missing/);
    expect(error.message).toMatch(/2 tensors map to it/);
  });

  it('an index whose shard lacks a tensor', async () => {
    const dir = await sharded('lacking');
    const index = JSON.parse(await readFile(indexOf(dir), 'utf8')) as { weight_map: Record<string, string> };
    index.weight_map.e = 'model-00002-of-00002.safetensors';
    await writeFile(indexOf(dir), JSON.stringify(index));
    const error = await captured(() => Checkpoint.open(dir));
    expect(error.file).toBe(join(dir, 'model-00002-of-00002.safetensors'));
    expect(error.field).toBe('tensor "e"');
    expect(error.message).toMatch(/expected the tensor, since model.safetensors.index.json maps it to this shard, got no such tensor in the shard/);
  });

  it('a shard holding a tensor the index does not list', async () => {
    const dir = await sharded('misplaced');
    const index = JSON.parse(await readFile(indexOf(dir), 'utf8')) as { weight_map: Record<string, string> };
    delete index.weight_map.d;
    await writeFile(indexOf(dir), JSON.stringify(index));
    const error = await captured(() => Checkpoint.open(dir));
    expect(error.file).toBe(join(dir, 'model-00002-of-00002.safetensors'));
    expect(error.field).toBe('tensor "d"');
    expect(error.message).toMatch(/got a tensor the index does not list/);
  });

  it('a shard holding a tensor the index maps to another shard', async () => {
    const dir = await sharded('duplicated');
    const u8 = (n: string, fill: number) => ({ name: n, dtype: 'U8' as const, shape: [4], data: new Uint8Array(4).fill(fill) });
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [u8('c', 3), u8('d', 4), u8('b', 2)]);
    const error = await captured(() => Checkpoint.open(dir));
    expect(error.file).toBe(join(dir, 'model-00002-of-00002.safetensors'));
    expect(error.field).toBe('tensor "b"');
    expect(error.message).toMatch(/got a tensor the index maps to "model-00001-of-00002.safetensors"/);
  });

  it('an index that is not JSON, lacks weight_map, escapes its directory or has a bad total_size', async () => {
    const dir = await sharded('bad-index');
    const attempts: [string, string, RegExp][] = [
      ['{"weight_map": ', 'index', /expected a JSON object, got text that is not JSON/],
      ['{"metadata": {"total_size": 12}}', 'weight_map', /expected an object mapping tensor names to shard files, got none/],
      ['{"weight_map": {"a": "../elsewhere.safetensors"}}', 'weight_map["a"]', /relative to the index directory, got "..\/elsewhere.safetensors"/],
      ['{"weight_map": {"a": ""}}', 'weight_map["a"]', /expected a shard file name, got ""/],
      ['{"metadata": {"total_size": "12"}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}', 'metadata.total_size', /got "12"/],
    ];
    for (const [text, field, message] of attempts) {
      await writeFile(indexOf(dir), text);
      const error = await captured(() => Checkpoint.open(dir));
      expect(error.file).toBe(indexOf(dir));
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    }
  });

  it('a directory with no recognisable checkpoint', async () => {
    const dir = join(tmp, 'not-a-checkpoint');
    await mkdir(dir);
    await writeFile(join(dir, 'one.safetensors'), valid());
    await writeFile(join(dir, 'two.safetensors'), valid());
    const error = await captured(() => Checkpoint.open(dir));
    expect(error.file).toBe(dir);
    expect(error.field).toBe('checkpoint directory');
    expect(error.message).toMatch(/got one.safetensors, two.safetensors/);
  });
});
