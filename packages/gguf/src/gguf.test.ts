// Round trips through the writer and reader: header layout, typed metadata, alignment, and
// each tensor encoding against its f32 source.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobSource, bytesSource } from '@peft-ts/safetensors';
import { GgufValueType, decodeTensor, encodeTensor, gguf, readGgufInfo, readGgufTensor, writeGguf, type GgufMetadata } from './node.js';
import { readGgufInfoFrom, readGgufTensorFrom, serializeGguf } from './index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peft-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const values = (n: number, seed = 1): Float32Array => {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 2 - 1;
  });
};

describe('writeGguf / readGgufInfo', () => {
  it('writes the v3 header, typed metadata and 32-byte aligned tensors, and reads them back', async () => {
    const path = join(dir, 'a.gguf');
    const metadata: GgufMetadata = new Map([
      ['general.architecture', gguf.str('llama')],
      ['llama.block_count', gguf.u32(2)],
      ['llama.rope.freq_base', gguf.f32(10000)],
      ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
      ['tokenizer.ggml.tokens', gguf.strArray(['<unk>', 'é', '▁a'])],
      ['tokenizer.ggml.scores', gguf.f32Array([0, -1.5, -2])],
      ['tokenizer.ggml.token_type', gguf.i32Array([2, 1, 1])],
    ]);
    const a = values(3 * 5);
    const b = values(2 * 64, 2);
    const r = await writeGguf(path, metadata, [
      { name: 'a', shape: [3, 5], type: 'F32', data: () => encodeTensor(a, 'F32') },
      { name: 'b', shape: [2, 64], type: 'Q8_0', data: () => encodeTensor(b, 'Q8_0', 64) },
    ]);
    const bytes = await readFile(path);
    expect(r.bytes).toBe(bytes.length);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('GGUF');
    expect(bytes.readUInt32LE(4)).toBe(3);
    expect(Number(bytes.readBigUInt64LE(8))).toBe(2);
    expect(Number(bytes.readBigUInt64LE(16))).toBe(7);
    const info = await readGgufInfo(path);
    expect(info.version).toBe(3);
    expect(info.metadata.get('llama.block_count')).toBe(2);
    expect(info.metadataTypes.get('llama.block_count')).toEqual({ type: GgufValueType.UINT32 });
    expect(info.metadata.get('tokenizer.ggml.tokens')).toEqual(['<unk>', 'é', '▁a']);
    expect(info.metadata.get('tokenizer.ggml.add_bos_token')).toBe(true);
    expect(info.metadataTypes.get('tokenizer.ggml.token_type')).toEqual({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32 });
    expect(info.tensors.map((t) => [t.name, t.shape, t.type])).toEqual([
      ['a', [3, 5], 'F32'],
      ['b', [2, 64], 'Q8_0'],
    ]);
    for (const t of info.tensors) expect(t.offset % 32).toBe(0);
    // The dims are stored innermost first: 'a' is ne = [5, 3].
    expect(info.dataOffset % 32).toBe(0);
    const [ta, tb] = info.tensors;
    if (!ta || !tb) throw new Error('two tensors expected');
    expect(Array.from(await readGgufTensor(path, ta))).toEqual(Array.from(a));
    // q8_0 keeps each value within half a step of its block's scale (max|x| / 127).
    const back = await readGgufTensor(path, tb);
    for (let blk = 0; blk < 4; blk += 1) {
      const block = b.subarray(blk * 32, blk * 32 + 32);
      const step = block.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
      for (let i = 0; i < 32; i += 1) expect(Math.abs((back[blk * 32 + i] ?? 0) - (block[i] ?? 0))).toBeLessThanOrEqual(step * 0.5 + 1e-3 * step + 1e-7);
    }
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('f16 and bf16 round to their nearest representable value', () => {
    const x = Float32Array.from([1, -2.5, 65504, 1e-8, 3.14159]);
    expect(Array.from(decodeTensor(encodeTensor(x, 'F16'), 'F16', 5))).toEqual([1, -2.5, 65504, 0, 3.140625]);
    const bf = Array.from(decodeTensor(encodeTensor(x, 'BF16'), 'BF16', 5));
    expect([bf[0], bf[1], bf[2], bf[4]]).toEqual([1, -2.5, 65536, 3.140625]);
    expect(Math.abs((bf[3] ?? 0) - 1e-8)).toBeLessThan(1e-8 / 128);
  });

  it('refuses q8_0 rows that are not a multiple of 32, and a file that is not GGUF', async () => {
    expect(() => encodeTensor(values(48), 'Q8_0', 48)).toThrow(/q8_0 row length/);
    const path = join(dir, 'bad.gguf');
    await writeGguf(path, new Map(), []);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, 'not a gguf file at all');
    await expect(readGgufInfo(path)).rejects.toThrow(/bad\.gguf: magic: expected "GGUF"/);
  });

  it('leaves no file behind when a tensor has the wrong byte length', async () => {
    const path = join(dir, 'short.gguf');
    await expect(writeGguf(path, new Map(), [{ name: 'x', shape: [4], type: 'F32', data: () => new Uint8Array(8) }])).rejects.toThrow(/tensor "x": expected 16 bytes of F32/);
    expect((await readdir(dir)).filter((f) => f.startsWith('short') || f.includes('short.gguf'))).toEqual([]);
  });
});

describe('GGUF in memory (the main entry)', () => {
  it('serializeGguf gives the bytes writeGguf writes, and readGgufInfoFrom/readGgufTensorFrom read them from a Blob', async () => {
    const w = values(96);
    const metadata: GgufMetadata = new Map([
      ['general.architecture', gguf.str('llama')],
      ['general.alignment', gguf.u32(64)],
      ['llama.block_count', gguf.u32(2)],
    ]);
    const tensors = () => [
      { name: 'a', shape: [3, 32], type: 'Q8_0' as const, data: () => encodeTensor(w, 'Q8_0', 32) },
      { name: 'b', shape: [5], type: 'F16' as const, data: () => Promise.resolve(encodeTensor(w.subarray(0, 5), 'F16')) },
    ];
    const bytes = await serializeGguf(metadata, tensors());
    const path = join(dir, 'memory.gguf');
    const written = await writeGguf(path, metadata, tensors());
    expect(written.bytes).toBe(bytes.byteLength);
    expect(bytes).toEqual(new Uint8Array(await readFile(path)));

    const source = blobSource(new Blob([bytes]), 'download.gguf');
    const info = await readGgufInfoFrom(source);
    expect(info).toEqual(await readGgufInfo(path));
    expect(info.alignment).toBe(64);
    const [a, b] = info.tensors;
    if (!a || !b) throw new Error('two tensors expected');
    expect(await readGgufTensorFrom(source, a)).toEqual(decodeTensor(encodeTensor(w, 'Q8_0', 32), 'Q8_0', 96));
    expect(await readGgufTensorFrom(source, b)).toEqual(await readGgufTensor(path, b));

    await expect(serializeGguf(new Map(), [{ name: 'x', shape: [4], type: 'F32', data: () => new Uint8Array(8) }])).rejects.toThrow(
      /\(in-memory gguf\): tensor "x": expected 16 bytes of F32 for shape \[4\], got 8 bytes/,
    );
    await expect(readGgufInfoFrom(bytesSource('cut.gguf', bytes.subarray(0, 20)))).rejects.toThrow(/^cut\.gguf: /);
  });
});
