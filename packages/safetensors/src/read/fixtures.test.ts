// Every golden .safetensors fixture parses and reads, and the BF16 llama checkpoint equals the
// F32 one rounded with f32ToBf16, bit for bit.
import { readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { Checkpoint, DTYPE_SIZE, f32ToBf16, parseSafetensorsHeader, SafetensorsFile } from '../node/index.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));
const fixtureFiles = ['hf-tiny', 'bnb']
  .flatMap((dir) => readdirSync(`${fixtures}${dir}`, { recursive: true, encoding: 'utf8' }).map((f) => `${fixtures}${dir}/${f}`))
  .filter((f) => f.endsWith('.safetensors'))
  .sort();

describe('golden fixtures', () => {
  it('finds the fixture files', () => {
    expect(fixtureFiles.length).toBe(39);
  });

  it.each(fixtureFiles.map((f) => [f.slice(fixtures.length), f]))('%s parses and every tensor reads', async (_, path) => {
    const bytes = new Uint8Array(readFileSync(path));
    const parsed = parseSafetensorsHeader(bytes, path);
    // The header alone, with the file size given, parses to the same result.
    expect(parseSafetensorsHeader(bytes.subarray(0, 8 + parsed.headerLength), path, { fileSize: bytes.byteLength })).toEqual(parsed);
    const file = await SafetensorsFile.open(path);
    try {
      expect(file.headerLength).toBe(parsed.headerLength);
      expect(file.metadata).toEqual(parsed.metadata);
      expect(file.names()).toEqual(parsed.tensors.map((t) => t.name));
      expect(file.names().length).toBeGreaterThan(0);
      let covered = 0;
      for (const info of parsed.tensors) {
        expect(file.info(info.name)).toEqual(info);
        const raw = await file.readBytes(info.name);
        // The bytes come from where the header says, in the file as read whole.
        expect(Buffer.compare(raw, bytes.subarray(info.offset, info.offset + info.byteLength))).toBe(0);
        const tensor = await file.read(info.name);
        expect(tensor.dtype).toBe(info.dtype);
        expect(tensor.shape).toEqual(info.shape);
        expect(tensor.data.length).toBe(info.shape.reduce((a, b) => a * b, 1));
        expect(tensor.data.byteLength).toBe(info.byteLength);
        covered += info.byteLength;
      }
      expect(8 + parsed.headerLength + covered).toBe(bytes.byteLength);
    } finally {
      await file.close();
    }
  });

  it('decodes dtypes to the documented typed arrays with the right values', async () => {
    const expected = await SafetensorsFile.open(`${fixtures}hf-tiny/llama/expected.safetensors`);
    const ids = await expected.read('input_ids');
    expect(ids.dtype).toBe('I32');
    expect(ids.shape).toEqual([2, 16]);
    expect(ids.data).toBeInstanceOf(Int32Array);
    const meta = JSON.parse(readFileSync(`${fixtures}hf-tiny/meta.json`, 'utf8')) as { llama: { greedy_prompt: number[] } };
    // meta.json's greedy prompt is the first six ids of row 0.
    expect([...(ids.data as Int32Array).subarray(0, 6)]).toEqual(meta.llama.greedy_prompt);
    const logits = await expected.read('logits');
    expect(logits.data).toBeInstanceOf(Float32Array);
    expect(await expected.readF32('logits')).toEqual(logits.data);
    await expect(expected.readF32('input_ids')).rejects.toThrow(/expected dtype F32, F64, F16 or BF16, got I32/);
    await expected.close();

    const bnb = await SafetensorsFile.open(`${fixtures}bnb/llama-bnb-nf4/model.safetensors`);
    const u8 = bnb.names().find((n) => bnb.info(n).dtype === 'U8');
    expect(u8).toBeDefined();
    const packed = await bnb.read(u8 ?? '');
    expect(packed.data).toBeInstanceOf(Uint8Array);
    expect(packed.data.length).toBe(bnb.info(u8 ?? '').byteLength / DTYPE_SIZE.U8);
    await bnb.close();
  });

  it('BF16 llama checkpoint equals the F32 one rounded with f32ToBf16, bit for bit', async () => {
    const f32 = await Checkpoint.open(`${fixtures}hf-tiny/llama/model`);
    const bf16 = await Checkpoint.open(`${fixtures}hf-tiny/llama/model-bf16`);
    expect(bf16.names()).toEqual(f32.names());
    expect(f32.names().length).toBe(21);
    let words = 0;
    for (const name of f32.names()) {
      const want = f32ToBf16(await f32.readF32(name));
      const got = await bf16.read(name);
      expect(got.dtype).toBe('BF16');
      expect(got.shape).toEqual(f32.info(name).shape);
      const gotWords = got.data as Uint16Array;
      let firstBad = -1;
      for (let i = 0; i < want.length && firstBad < 0; i++) if (gotWords[i] !== want[i]) firstBad = i;
      expect(firstBad, `${name}: first differing word`).toBe(-1);
      expect(gotWords.length).toBe(want.length);
      words += want.length;
      // readF32 of the BF16 tensor widens exactly: rounding it again is the identity.
      expect(f32ToBf16(await bf16.readF32(name))).toEqual(gotWords);
    }
    expect(words).toBe((f32.totalSize) / 4);
    await Promise.all([f32.close(), bf16.close()]);
  });

  it('opening reads only the header; tensor reads fetch only their own bytes', async () => {
    const path = `${fixtures}hf-tiny/llama/model/model.safetensors`;
    const probe = await open(path, 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const spy = vi.spyOn(proto, 'read');
    try {
      const file = await SafetensorsFile.open(path);
      const openBytes = (await Promise.all(spy.mock.results.map((r) => r.value as Promise<{ bytesRead: number }>))).reduce(
        (sum, r) => sum + r.bytesRead,
        0,
      );
      expect(openBytes).toBe(8 + file.headerLength);
      spy.mockClear();
      const info = file.info('model.layers.1.self_attn.q_proj.weight');
      await file.readBytes(info.name);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0]?.slice(2)).toEqual([info.byteLength, info.offset]);
      await file.close();
    } finally {
      spy.mockRestore();
    }
  });
});
