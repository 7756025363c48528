// The large-file path: tensor bytes come in through positioned reads capped at the chunk size,
// so a tensor bigger than one read (2 GiB in production) is assembled from several.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Checkpoint, SafetensorsFile, writeSafetensors } from '../node/index.js';

let tmp = '';
let path = '';
const big = Float32Array.from({ length: 1003 }, (_, i) => Math.sin(i) * 1000);
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'safetensors-chunks-'));
  path = join(tmp, 'chunks.safetensors');
  await writeSafetensors(path, [
    { name: 'big', dtype: 'F32', shape: [17, 59], data: big },
    { name: 'small', dtype: 'I32', shape: [3], data: new Int32Array([7, -8, 9]) },
  ]);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function fileHandlePrototype(file: string): Promise<{ read: (...args: unknown[]) => Promise<unknown> }> {
  const probe = await open(file, 'r');
  const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<unknown> };
  await probe.close();
  return proto;
}

describe('chunked positioned reads', () => {
  it('reads a tensor in several chunks at its absolute offset and reassembles it exactly', async () => {
    const proto = await fileHandlePrototype(path);
    const file = await SafetensorsFile.open(path, { readChunkBytes: 100 });
    const spy = vi.spyOn(proto, 'read');
    try {
      const info = file.info('big');
      const data = await file.readF32('big');
      expect(data).toEqual(big);
      // 4012 bytes in reads of at most 100: 41 reads, each at its own absolute position.
      const calls = spy.mock.calls as [Uint8Array, number, number, number][];
      expect(calls.length).toBe(Math.ceil(info.byteLength / 100));
      expect(calls.map((c) => c[3])).toEqual(calls.map((_, i) => info.offset + i * 100));
      expect(calls.map((c) => c[2])).toEqual(calls.map((_, i) => Math.min(100, info.byteLength - i * 100)));

      spy.mockClear();
      expect([...((await file.read('small')).data as Int32Array)]).toEqual([7, -8, 9]);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
      await file.close();
    }
  });

  it('passes the chunk size through Checkpoint.open and refuses sizes out of range', async () => {
    const ckpt = await Checkpoint.open(path, { readChunkBytes: 1 });
    expect([...((await ckpt.read('small')).data as Int32Array)]).toEqual([7, -8, 9]);
    await ckpt.close();
    await expect(SafetensorsFile.open(path, { readChunkBytes: 0 })).rejects.toThrow(RangeError);
    await expect(SafetensorsFile.open(path, { readChunkBytes: 2 ** 31 })).rejects.toThrow(/readChunkBytes must be an integer/);
  });
});
