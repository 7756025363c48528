// The root entry reads a bitsandbytes 4-bit checkpoint from any FileTree: the fixture's files
// held in memory give the same quantized weights, tensors and config as the directory.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { memoryTree } from '@peft-ts/safetensors';
import { Bnb4bitCheckpoint, dequantize, loadBnb4bitFrom, parseConfigJson, quantizedConfigText, readConfigJsonFrom } from '../index.js';
import { loadBnb4bit } from '../node.js';
import { LLAMA_BNB_DIR } from '../test-fixtures.js';

async function treeOf(dir: string, name: string) {
  const files: Record<string, Blob> = {};
  for (const file of await readdir(dir)) files[file] = new Blob([await readFile(join(dir, file))]);
  return memoryTree(name, files);
}

describe('4-bit checkpoints from a FileTree', () => {
  it('loadBnb4bitFrom(memoryTree) equals loadBnb4bit(dir), tensor for tensor', async () => {
    const fromTree = await loadBnb4bitFrom(await treeOf(LLAMA_BNB_DIR, 'llama-bnb'));
    const fromDir = await loadBnb4bit(LLAMA_BNB_DIR);
    expect(fromTree.config).toEqual(fromDir.config);
    expect(fromTree.quantizationConfig).toEqual(fromDir.quantizationConfig);
    expect([...fromTree.quantized.keys()]).toEqual([...fromDir.quantized.keys()]);
    expect(fromTree.quantized.size).toBe(14);
    for (const [name, q] of fromDir.quantized) {
      const t = fromTree.quantized.get(name);
      expect(t?.packed).toEqual(q.packed);
      expect(t && dequantize(t)).toEqual(dequantize(q));
    }
    expect([...fromTree.tensors.keys()]).toEqual([...fromDir.tensors.keys()]);
    for (const [name, t] of fromDir.tensors) expect(fromTree.tensors.get(name)?.data).toEqual(t.data);
  });

  it('Bnb4bitCheckpoint.open names the tree in its errors and keeps config number tokens', async () => {
    const tree = await treeOf(LLAMA_BNB_DIR, 'picked');
    const ckpt = await Bnb4bitCheckpoint.open(tree);
    expect(ckpt.dir).toBe('picked');
    expect(ckpt.info(ckpt.quantizedNames()[0] ?? '').file).toBe('picked/model.safetensors');
    await expect(ckpt.readQuantized('model.norm.weight')).rejects.toThrow(/^picked\/model\.safetensors: model\.norm\.weight: expected a quantized weight/);
    await ckpt.close();

    const text = await (tree.files.get('config.json') as Blob).text();
    const config = await readConfigJsonFrom(tree);
    expect(config).toEqual(parseConfigJson(text, 'config.json'));
    // Written back unchanged, the config keeps its number tokens (10000.0 stays 10000.0).
    expect(quantizedConfigText(config, ckpt.quantizationConfig, 'config.json')).toBe(text);

    tree.files.delete('config.json');
    const error = await Bnb4bitCheckpoint.open(tree).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe('picked/config.json');
    expect((error as FormatError).message).toMatch(/expected a readable config.json, got picked: config.json: expected a file of that name, got no such file/);
  });
});
