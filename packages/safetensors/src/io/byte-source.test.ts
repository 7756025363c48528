// The main entry reads the same checkpoints from memory, Blobs and any FileTree as the Node
// entry reads from disk, and the Node trees list, open and write directories.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import {
  blobSource,
  bytesSource,
  Checkpoint,
  memoryTree,
  readJson,
  readText,
  SafetensorsFile,
  serializeSafetensors,
  writeSafetensorsTo,
  type ByteSource,
  type TensorSource,
} from '../index.js';
import * as node from '../node/index.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));
const llamaDir = `${fixtures}hf-tiny/llama/model`;

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'safetensors-tree-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Every file of a directory, read into a memoryTree. */
async function intoMemory(dir: string, name: string) {
  const files: Record<string, Uint8Array> = {};
  for (const file of await readdir(dir)) files[file] = new Uint8Array(await readFile(join(dir, file)));
  return memoryTree(name, files);
}

async function expectSameTensors(a: Checkpoint, b: Checkpoint): Promise<void> {
  expect(a.names()).toEqual(b.names());
  expect(a.metadata).toEqual(b.metadata);
  for (const name of a.names()) {
    expect(a.info(name).shape).toEqual(b.info(name).shape);
    expect(a.info(name).dtype).toBe(b.info(name).dtype);
    expect(await a.readBytes(name)).toEqual(await b.readBytes(name));
  }
}

describe('Checkpoint and SafetensorsFile on the main entry', () => {
  it('a memoryTree of the llama model directory gives the same tensors as the directory on disk', async () => {
    const tree = await intoMemory(llamaDir, 'llama');
    const fromMemory = await Checkpoint.open(tree);
    const fromDisk = await node.Checkpoint.open(llamaDir);
    expect(fromMemory.files).toEqual(['llama/model.safetensors']);
    expect(fromMemory.names().length).toBeGreaterThan(10);
    await expectSameTensors(fromMemory, fromDisk);
    expect((await fromMemory.readF32('model.norm.weight')).length).toBe(fromDisk.info('model.norm.weight').shape[0]);
    await Promise.all([fromMemory.close(), fromDisk.close()]);
  });

  it('opens a sharded checkpoint from memory and reports a missing shard by name', async () => {
    const dir = join(tmp, 'sharded');
    const source = await node.Checkpoint.open(llamaDir);
    const written = await node.writeCheckpoint(dir, source.sources(), { maxShardBytes: 150_000 });
    expect(written.files.length).toBeGreaterThan(2);
    const tree = await intoMemory(dir, 'shards');
    const fromMemory = await Checkpoint.open(tree);
    expect(fromMemory.indexFile).toBe('shards/model.safetensors.index.json');
    expect(fromMemory.indexTotalSize).toBe(source.totalSize);
    expect(fromMemory.files).toEqual(written.files.map((f) => `shards/${f.slice(dir.length + 1)}`));
    const fromDisk = await node.Checkpoint.open(dir);
    await expectSameTensors(fromMemory, fromDisk);
    await Promise.all([fromMemory.close(), fromDisk.close(), source.close()]);

    const shard = written.files[1]?.slice(dir.length + 1) ?? '';
    tree.files.delete(shard);
    const error = await Checkpoint.open(tree).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe('shards/model.safetensors.index.json');
    expect((error as FormatError).message).toContain(`"${shard}", which is missing (shards/${shard})`);
  });

  it('opens a lone single file, a named file, and a Blob; a tree without a checkpoint is refused naming it', async () => {
    const bytes = new Uint8Array(await readFile(join(llamaDir, 'model.safetensors')));
    const tree = memoryTree('upload', { 'weights.safetensors': new Blob([bytes]), 'notes.txt': 'hello' });
    const lone = await Checkpoint.open(tree);
    expect(lone.files).toEqual(['upload/weights.safetensors']);
    const named = await Checkpoint.open(tree, { file: 'weights.safetensors' });
    const blob = await SafetensorsFile.open(blobSource(new Blob([bytes]), 'dropped.safetensors'));
    expect(blob.path).toBe('dropped.safetensors');
    const disk = await node.SafetensorsFile.open(join(llamaDir, 'model.safetensors'));
    expect(blob.names()).toEqual(disk.names());
    for (const name of disk.names()) expect(await blob.readBytes(name)).toEqual(await disk.readBytes(name));
    await expectSameTensors(named, lone);
    await Promise.all([lone.close(), named.close(), blob.close(), disk.close()]);

    await expect(Checkpoint.open(tree, { file: 'absent.safetensors' })).rejects.toThrow(
      'upload: absent.safetensors: expected a .safetensors file of that name, got no such file',
    );
    await expect(Checkpoint.open(memoryTree('empty', { 'a.txt': 'x' }))).rejects.toThrow(/^empty: checkpoint directory: expected model.safetensors/);
  });

  it('a source that ends early fails the read with the tensor named, and close() closes the source once', async () => {
    const bytes = serializeSafetensors([
      { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      { name: 'b', dtype: 'F32', shape: [3], data: new Float32Array([3, 4, 5]) },
    ]);
    let cut = bytes.byteLength;
    let closes = 0;
    const shrinking: ByteSource = {
      name: 'shrinking.safetensors',
      size: bytes.byteLength,
      read: (offset, length) => Promise.resolve(bytes.slice(offset, Math.min(offset + length, cut))),
      close: () => {
        closes++;
        return Promise.resolve();
      },
    };
    const file = await SafetensorsFile.open(shrinking);
    expect([...(await file.readF32('a'))]).toEqual([1, 2]);
    cut = file.info('b').offset + 4;
    await expect(file.readBytes('b')).rejects.toThrow(
      /^shrinking.safetensors: tensor "b": expected 12 bytes at file offset \d+, got end of file after 4 bytes/,
    );
    await file.close();
    await file.close();
    expect(closes).toBe(1);
    await expect(file.readBytes('a')).rejects.toThrow(/the file was closed/);
  });

  it('a header that fails to parse closes the source and names it', async () => {
    let closed = false;
    const source = { ...bytesSource('bad.safetensors', new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 123])), close: () => Promise.resolve(void (closed = true)) };
    await expect(SafetensorsFile.open(source)).rejects.toThrow(/^bad.safetensors: /);
    expect(closed).toBe(true);
  });
});

describe('readText, readJson and writeSafetensorsTo', () => {
  it('reads text and JSON from any tree, and names the tree and file when absent or not JSON', async () => {
    const tree = memoryTree('adapter', { 'a.json': '{"r": 8}', 'b.json': new Blob(['\uFEFF[1, 2]']), 'c.json': '{"r": ' });
    expect(await readJson(tree, 'a.json')).toEqual({ r: 8 });
    expect(await readJson(tree, 'b.json')).toEqual([1, 2]);
    expect(await readText(tree, 'a.json')).toBe('{"r": 8}');
    await expect(readText(tree, 'missing.json')).rejects.toThrow('adapter: missing.json: expected a file of that name, got no such file');
    await expect(readJson(tree, 'c.json')).rejects.toThrow(/^adapter\/c\.json: JSON: expected valid JSON, got /);
  });

  it('writeSafetensorsTo fetches lazy data and writes the same bytes as the streaming file writer', async () => {
    const tensors = (): TensorSource[] => [
      { name: 'w', dtype: 'F32', shape: [2, 3], data: () => Float32Array.from([1, -2, 3.5, 4, 5, 6]) },
      { name: 'ids', dtype: 'I64', shape: [2], data: new BigInt64Array([7n, -8n]) },
    ];
    const out = memoryTree('out');
    const bytes = await writeSafetensorsTo(out, 'adapter_model.safetensors', tensors(), { metadata: { format: 'pt' } });
    expect(out.files.get('adapter_model.safetensors')).toEqual(bytes);
    const path = join(tmp, 'streamed.safetensors');
    await node.writeSafetensors(path, tensors(), { metadata: { format: 'pt' } });
    expect(bytes).toEqual(new Uint8Array(await readFile(path)));
    const back = await SafetensorsFile.open(bytesSource('back', bytes));
    expect([...(await back.readF32('w'))]).toEqual([1, -2, 3.5, 4, 5, 6]);
  });
});

describe('Node trees', () => {
  it('dirWriter writes nested files atomically and dirTree lists and opens them', async () => {
    const dir = join(tmp, 'written');
    const writer = node.dirWriter(dir);
    await writer.write('config.json', '{"a": 1}');
    await writer.write('sub/x.bin', new Uint8Array([1, 2, 3]));
    await writer.write('config.json', '{"a": 2}');
    const tree = node.dirTree(dir);
    expect(await tree.list()).toEqual(['config.json', 'sub/x.bin']);
    expect(await readJson(tree, 'config.json')).toEqual({ a: 2 });
    const source = await tree.open('sub/x.bin');
    expect(source?.name).toBe(join(dir, 'sub', 'x.bin'));
    expect(source?.size).toBe(3);
    expect([...((await source?.read(1, 5)) ?? [])]).toEqual([2, 3]);
    await source?.close?.();
    expect(await tree.open('absent.json')).toBeNull();
    await expect(tree.open('../escape.json')).rejects.toThrow(/is not a file name inside the directory/);
    await expect(writer.write('/etc/x', 'no')).rejects.toThrow(/is not a file name inside the directory/);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'sub']);
  });
});
