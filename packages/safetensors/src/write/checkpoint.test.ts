// Sharded checkpoints: writeCheckpoint splits and names shards as transformers does, writes the
// index JSON in its exact layout, and Checkpoint.open reads the same tensors back.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint, writeCheckpoint, type TensorSource } from '../node/index.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));
let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'safetensors-ckpt-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const u8 = (name: string, n: number, fill: number): TensorSource => ({
  name,
  dtype: 'U8',
  shape: [n],
  data: new Uint8Array(n).fill(fill),
});

describe('writeCheckpoint', () => {
  it('shards the llama fixture, and Checkpoint.open reads back the same tensors and bytes', async () => {
    const source = await Checkpoint.open(`${fixtures}hf-tiny/llama/model`);
    const dir = join(tmp, 'llama-sharded');
    const written = await writeCheckpoint(dir, source.sources(), { maxShardBytes: 150_000 });
    expect(written.totalSize).toBe(source.totalSize);
    expect(written.files.length).toBeGreaterThan(2);
    const count = written.files.length;
    const pad = (i: number) => String(i).padStart(5, '0');
    expect(written.files).toEqual(Array.from({ length: count }, (_, i) => join(dir, `model-${pad(i + 1)}-of-${pad(count)}.safetensors`)));
    expect(written.indexFile).toBe(join(dir, 'model.safetensors.index.json'));

    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: Record<string, unknown>;
      weight_map: Record<string, string>;
    };
    expect(Object.keys(index)).toEqual(['metadata', 'weight_map']);
    expect(index.metadata).toEqual({ total_size: source.totalSize });
    expect(Object.keys(index.weight_map)).toEqual([...source.names()].sort());
    expect(new Set(Object.values(index.weight_map)).size).toBe(count);

    const back = await Checkpoint.open(dir);
    expect(back.files).toEqual(written.files);
    expect(back.indexTotalSize).toBe(source.totalSize);
    expect(back.metadata).toEqual({ format: 'pt' });
    expect([...back.names()].sort()).toEqual([...source.names()].sort());
    for (const name of source.names()) {
      const info = back.info(name);
      expect(info.file).toBe(join(dir, index.weight_map[name] ?? ''));
      expect(info.shape).toEqual(source.info(name).shape);
      expect(Buffer.compare(await back.readBytes(name), await source.readBytes(name))).toBe(0);
    }
    // Each shard holds at most maxShardBytes of tensor data.
    for (const file of back.files) {
      const names = back.names().filter((n) => back.info(n).file === file);
      expect(names.reduce((s, n) => s + back.info(n).byteLength, 0)).toBeLessThanOrEqual(150_000);
    }
    await Promise.all([source.close(), back.close()]);
  });

  it('splits greedily in input order, gives an oversized tensor its own shard, and writes the index as transformers does', async () => {
    const dir = join(tmp, 'greedy');
    const written = await writeCheckpoint(dir, [u8('a', 40, 1), u8('b', 50, 2), u8('huge', 300, 3), u8('c', 20, 4), u8('d', 90, 5)], {
      maxShardBytes: 100,
      metadata: { format: 'pt', by: 'peft-ts' },
    });
    // huge is over the limit and becomes a shard at once, while a+b (90 bytes) stay open; c would
    // push them past 100, so they close and c starts the next; d (90) does not fit beside c.
    const text = await readFile(join(dir, 'model.safetensors.index.json'), 'utf8');
    expect(text).toBe(
      [
        '{',
        '  "metadata": {',
        '    "total_size": 500',
        '  },',
        '  "weight_map": {',
        '    "a": "model-00002-of-00004.safetensors",',
        '    "b": "model-00002-of-00004.safetensors",',
        '    "c": "model-00003-of-00004.safetensors",',
        '    "d": "model-00004-of-00004.safetensors",',
        '    "huge": "model-00001-of-00004.safetensors"',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    expect(written.totalSize).toBe(500);
    const ckpt = await Checkpoint.open(join(dir, 'model.safetensors.index.json'));
    expect(ckpt.metadata).toEqual({ format: 'pt', by: 'peft-ts' });
    expect([...((await ckpt.read('d')).data as Uint8Array)]).toEqual(new Array(90).fill(5));
    await ckpt.close();
  });

  it('escapes non-ASCII names in the index the way Python json does', async () => {
    const dir = join(tmp, 'unicode');
    await writeCheckpoint(dir, [u8('é.w', 8, 1), u8('\u{1F600}', 8, 2), u8('t"ab\t', 8, 3)], { maxShardBytes: 8 });
    const text = await readFile(join(dir, 'model.safetensors.index.json'), 'utf8');
    expect(text).toContain('"t\\"ab\\t": "model-00003-of-00003.safetensors"');
    expect(text).toContain('"\\u00e9.w": "model-00001-of-00003.safetensors"');
    expect(text).toContain('"\\ud83d\\ude00": "model-00002-of-00003.safetensors"');
    const ckpt = await Checkpoint.open(dir);
    expect([...ckpt.names()].sort()).toEqual(['t"ab\t', 'é.w', '\u{1F600}']);
    await ckpt.close();
  });

  it('writes one model.safetensors with no index when everything fits, and removes stale shards of an earlier save', async () => {
    const dir = join(tmp, 'resave');
    await writeCheckpoint(dir, [u8('a', 60, 1), u8('b', 60, 2)], { maxShardBytes: 100 });
    expect((await readdir(dir)).sort()).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    await writeFile(join(dir, 'config.json'), '{}');
    const single = await writeCheckpoint(dir, [u8('a', 60, 7), u8('b', 60, 8)]);
    expect(single.files).toEqual([join(dir, 'model.safetensors')]);
    expect(single.indexFile).toBeUndefined();
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
    const ckpt = await Checkpoint.open(dir);
    expect(ckpt.indexFile).toBeUndefined();
    expect((await ckpt.read('b')).data[0]).toBe(8);
    await ckpt.close();

    const named = await writeCheckpoint(dir, [u8('x', 4, 1)], { baseName: 'adapter_model', metadata: {} });
    expect(named.files).toEqual([join(dir, 'adapter_model.safetensors')]);
    expect((await readdir(dir)).sort()).toEqual(['adapter_model.safetensors', 'config.json', 'model.safetensors']);
  });

  it('refuses a non-positive shard size and a base name with a path in it', async () => {
    await expect(writeCheckpoint(join(tmp, 'opts'), [u8('a', 1, 1)], { maxShardBytes: 0 })).rejects.toThrow(
      /maxShardBytes must be a positive integer or Infinity, got 0/,
    );
    await expect(writeCheckpoint(join(tmp, 'opts'), [u8('a', 1, 1)], { baseName: '../model' })).rejects.toThrow(
      /baseName must be a plain file name stem/,
    );
  });

  it('rejects names repeated across shards before writing anything', async () => {
    const dir = join(tmp, 'dupes');
    await expect(writeCheckpoint(dir, [u8('a', 60, 1), u8('a', 60, 2)], { maxShardBytes: 100 })).rejects.toThrow(
      /tensor "a": expected each tensor name once, got "a" repeated/,
    );
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
  });
});
