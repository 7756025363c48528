// The main entry loads a model from any FileTree (here, the fixture's files held in memory as a
// page would hold picked files) to the same model as loading its directory from Node.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { memoryTree, SafetensorsFile, type MemoryTree } from '@peft-ts/safetensors/node';
import { fromArray, tidy, type Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModelConfigFrom, loadModelFrom } from '../index.js';
import { loadModel, loadModelConfig } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

async function treeOf(dir: string, name: string): Promise<MemoryTree> {
  const files: Record<string, Blob> = {};
  for (const file of await readdir(dir)) files[file] = new Blob([await readFile(join(dir, file))]);
  return memoryTree(name, files);
}

describe('loadModelFrom a FileTree', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it.each(['llama', 'gpt2'])('%s: the model from a memoryTree gives the same logits as loadModel(dir), and as transformers within 1e-4', async (arch) => {
    const dir = join(fixtures, arch, 'model');
    const tree = await treeOf(dir, `${arch}-in-memory`);
    expect(await loadModelConfigFrom(tree)).toEqual(await loadModelConfig(dir));

    const expected = await SafetensorsFile.open(join(fixtures, arch, 'expected.safetensors'));
    const ids = (await expected.read('input_ids')).data as Int32Array;
    const shape = expected.info('input_ids').shape;
    const want = await expected.readF32('logits');
    await expected.close();

    const logitsOf = async (model: Awaited<ReturnType<typeof loadModel>>) => {
      const out = tidy(() => model.forward(fromArray(rt, ids, shape, 'i32')));
      const values = await out.toArray();
      out.dispose();
      model.dispose();
      return values;
    };
    const fromTree = await logitsOf(await loadModelFrom(rt, tree));
    const fromDir = await logitsOf(await loadModel(rt, dir));
    expect(fromTree).toEqual(fromDir);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs((fromTree[i] ?? 0) - (want[i] ?? 0)));
    expect(fromTree.length).toBe(want.length);
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('a tree without config.json or with bad JSON fails naming the tree and file', async () => {
    await expect(loadModelConfigFrom(memoryTree('picked', {}))).rejects.toThrow(
      'picked/config.json: (file): expected a readable config.json in the model directory, got no such file',
    );
    const error = await loadModelFrom(rt, memoryTree('picked', { 'config.json': '{"model_type": ' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe('picked/config.json');
    expect((error as FormatError).field).toBe('(json)');
  });
});
