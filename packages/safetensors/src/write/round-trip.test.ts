// Writing reproduces the reference writer's bytes: every fixture, re-serialised from its parsed
// tensors and metadata, comes out byte-identical, in memory and through the streaming writer.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeftError } from '@peft-ts/errors';
import {
  Checkpoint,
  f32ToBf16,
  SafetensorsFile,
  serializeSafetensors,
  writeCheckpoint,
  writeSafetensors,
  type TensorSource,
} from '../node/index.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));
const fixtureFiles = ['hf-tiny', 'bnb']
  .flatMap((dir) => readdirSync(`${fixtures}${dir}`, { recursive: true, encoding: 'utf8' }).map((f) => `${fixtures}${dir}/${f}`))
  .filter((f) => f.endsWith('.safetensors'))
  .sort();

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'safetensors-rt-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function eagerSources(file: SafetensorsFile): Promise<TensorSource[]> {
  const out: TensorSource[] = [];
  for (const name of file.names()) {
    const t = await file.read(name);
    out.push({ name, dtype: t.dtype, shape: t.shape, data: t.data });
  }
  return out;
}

/** A deterministic shuffle, so the writer's own ordering is what puts tensors in place. */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let s = 0x9e3779b9;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('byte-identical round trips of the fixtures', () => {
  it.each(fixtureFiles.map((f) => [f.slice(fixtures.length), f]))('%s', async (_, path) => {
    const original = new Uint8Array(await readFile(path));
    const file = await SafetensorsFile.open(path);
    try {
      const options = file.metadata ? { metadata: file.metadata } : {};
      const inMemory = serializeSafetensors(shuffled(await eagerSources(file)), options);
      expect(inMemory.byteLength).toBe(original.byteLength);
      expect(Buffer.compare(inMemory, original)).toBe(0);

      const out = join(tmp, 'rewritten.safetensors');
      await writeSafetensors(out, shuffled(file.sources()), options);
      expect(Buffer.compare(await readFile(out), original)).toBe(0);
    } finally {
      await file.close();
    }
  });

  it('the llama model, rewritten from its parsed content, equals the file exactly', async () => {
    const path = `${fixtures}hf-tiny/llama/model/model.safetensors`;
    const file = await SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    const bytes = serializeSafetensors(await eagerSources(file), { metadata: { format: 'pt' } });
    await file.close();
    expect(Buffer.compare(bytes, await readFile(path))).toBe(0);
  });
});

describe('writing a converted checkpoint', () => {
  it('F32 llama converted with f32ToBf16 and saved by writeCheckpoint is byte-identical to the BF16 fixture', async () => {
    const model = await Checkpoint.open(`${fixtures}hf-tiny/llama/model`);
    const dir = join(tmp, 'llama-bf16');
    const written = await writeCheckpoint(
      dir,
      model.names().map((name) => ({
        name,
        dtype: 'BF16' as const,
        shape: model.info(name).shape,
        data: async () => f32ToBf16(await model.readF32(name)),
      })),
    );
    await model.close();
    expect(written.files).toEqual([join(dir, 'model.safetensors')]);
    const want = await readFile(`${fixtures}hf-tiny/llama/model-bf16/model.safetensors`);
    expect(Buffer.compare(await readFile(join(dir, 'model.safetensors')), want)).toBe(0);
  });
});

describe('header layout', () => {
  const f32 = (n: number) => new Float32Array(n).fill(1);

  it('orders tensors by dtype rank then name, puts __metadata__ first, pads with spaces to 8 bytes', () => {
    const bytes = serializeSafetensors(
      [
        { name: 'b', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        { name: 'a', dtype: 'F32', shape: [2], data: f32(2) },
        { name: 'z', dtype: 'I64', shape: [1], data: new BigInt64Array([-5n]) },
        { name: 'h', dtype: 'BF16', shape: [1], data: new Uint16Array([0x3f80]) },
        { name: 'g', dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
        { name: 'c', dtype: 'F32', shape: [], data: f32(1) },
        { name: 'e', dtype: 'F64', shape: [1, 1], data: new Float64Array([2.5]) },
        { name: 'i', dtype: 'I32', shape: [0], data: new Int32Array(0) },
      ],
      { metadata: { format: 'pt', note: 'a "quoted"\nline é' } },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header).toBe(
      '{"__metadata__":{"format":"pt","note":"a \\"quoted\\"\\nline é"},' +
        '"z":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
        '"e":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]},' +
        '"a":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},' +
        '"c":{"dtype":"F32","shape":[],"data_offsets":[24,28]},' +
        '"i":{"dtype":"I32","shape":[0],"data_offsets":[28,28]},' +
        '"h":{"dtype":"BF16","shape":[1],"data_offsets":[28,30]},' +
        '"g":{"dtype":"F16","shape":[1],"data_offsets":[30,32]},' +
        '"b":{"dtype":"U8","shape":[3],"data_offsets":[32,35]}}' +
        ' '.repeat(n - Buffer.byteLength(header.trimEnd())),
    );
    expect(Buffer.byteLength(header.trimEnd()) % 8).not.toBe(0);
    expect(bytes.byteLength).toBe(8 + n + 35);
  });

  it('writes an empty file exactly as the reference does', () => {
    expect([...serializeSafetensors([])]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  });

  it('sorts names by code point (UTF-8 byte order), not by UTF-16 unit', () => {
    const names = ['\u{1F600}', '\uFF21', 'b', 'a'];
    const bytes = serializeSafetensors(names.map((name) => ({ name, dtype: 'U8', shape: [1], data: new Uint8Array([1]) })));
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const keys = Object.keys(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as object);
    expect(keys).toEqual(['a', 'b', '\uFF21', '\u{1F600}']);
  });
});

describe('writer input checks', () => {
  const ok = (name: string): TensorSource => ({ name, dtype: 'F32', shape: [2], data: new Float32Array(2) });

  it('rejects data whose length does not fit the shape', () => {
    expect(() => serializeSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: new Float32Array(2) }])).toThrow(
      /tensor "w"\.data: expected 12 bytes \(shape \[3\] x 4-byte F32\), got 8 bytes/,
    );
  });

  it('rejects a typed array of another dtype but takes raw bytes for any dtype', () => {
    expect(() => serializeSafetensors([{ name: 'w', dtype: 'I32', shape: [2], data: new Float32Array(2) }])).toThrow(
      /expected dtype Int32Array or raw bytes for I32, got Float32Array/,
    );
    expect(serializeSafetensors([{ name: 'w', dtype: 'I32', shape: [2], data: new Uint8Array(8) }]).byteLength).toBeGreaterThan(8);
  });

  it('rejects repeated names, the reserved name, unknown dtypes, bad shapes and non-string metadata', () => {
    expect(() => serializeSafetensors([ok('w'), ok('w')])).toThrow(/tensor "w": expected each tensor name once, got "w" repeated/);
    expect(() => serializeSafetensors([ok('__metadata__')])).toThrow(/tensor name: expected a well-formed string other than "__metadata__"/);
    expect(() => serializeSafetensors([{ ...ok('w'), dtype: 'U32' as 'F32' }])).toThrow(/tensor "w"\.dtype: expected one of F64, .*got "U32"/);
    expect(() => serializeSafetensors([{ ...ok('w'), shape: [-2] }])).toThrow(/tensor "w"\.shape: expected an array of non-negative integers/);
    expect(() => serializeSafetensors([ok('w')], { metadata: { a: 1 as unknown as string } })).toThrow(/__metadata__\."a": expected a string value, got 1/);
    expect(() => serializeSafetensors([{ ...ok('w'), data: () => new Float32Array(2) }])).toThrow(/use writeSafetensors for lazily produced data/);
  });

  it('calls lazy data one tensor at a time, in file order', async () => {
    let active = 0;
    let peak = 0;
    const calls: string[] = [];
    const lazy = (name: string, dtype: 'F32' | 'U8', n: number): TensorSource => ({
      name,
      dtype,
      shape: [n],
      data: async () => {
        calls.push(name);
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        active -= 1;
        return dtype === 'F32' ? new Float32Array(n).fill(n) : new Uint8Array(n).fill(n);
      },
    });
    async function* generate(): AsyncGenerator<TensorSource> {
      for (const source of [lazy('small', 'U8', 3), lazy('big', 'F32', 5), lazy('alpha', 'F32', 2)]) {
        // Hand each descriptor over on a later tick, as a reader of another file would.
        await new Promise((r) => setImmediate(r));
        yield source;
      }
    }
    const out = join(tmp, 'lazy.safetensors');
    await writeSafetensors(out, generate());
    expect(calls).toEqual(['alpha', 'big', 'small']);
    expect(peak).toBe(1);
    const file = await SafetensorsFile.open(out);
    expect([...(await file.readF32('big'))]).toEqual([5, 5, 5, 5, 5]);
    expect([...((await file.read('small')).data as Uint8Array)]).toEqual([3, 3, 3]);
    await file.close();
  });

  it('a failing write leaves the previous file untouched and no temporary file behind', async () => {
    const dir = await mkdtemp(join(tmp, 'atomic-'));
    const out = join(dir, 'model.safetensors');
    await writeFile(out, 'previous contents');
    const failing: TensorSource[] = [
      ok('a'),
      { name: 'b', dtype: 'F32', shape: [4], data: () => Promise.resolve(new Float32Array(3)) },
    ];
    await expect(writeSafetensors(out, failing)).rejects.toSatisfy(
      (e: unknown) => PeftError.isInstance(e) && e.message.includes('tensor "b".data: expected 16 bytes'),
    );
    expect(await readFile(out, 'utf8')).toBe('previous contents');
    expect(await readdir(dir)).toEqual(['model.safetensors']);

    const boom: TensorSource[] = [{ name: 'b', dtype: 'F32', shape: [1], data: () => Promise.reject(new Error('source failed')) }];
    await expect(writeSafetensors(out, boom)).rejects.toThrow('source failed');
    expect(await readdir(dir)).toEqual(['model.safetensors']);

    await writeSafetensors(out, [ok('a')]);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
    const file = await SafetensorsFile.open(out);
    expect(file.names()).toEqual(['a']);
    await file.close();
  });
});
