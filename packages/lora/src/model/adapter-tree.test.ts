// The main entry's LoraModel saves and loads adapters through the I/O interface: adapterFiles()
// holds the same bytes the Node saver writes, and an adapter loaded from a memoryTree gives
// PEFT's logits exactly as one loaded from its directory.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { memoryTree, SafetensorsFile, type MemoryTree } from '@peft-ts/safetensors/node';
import { fromArray, tidy, type Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel } from '@peft-ts/models/node';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, LoraModel as BrowserLoraModel } from '../index.js';
import { LoraModel } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

async function treeOf(dir: string, name: string): Promise<MemoryTree> {
  const files: Record<string, Uint8Array> = {};
  for (const file of await readdir(dir)) files[file] = new Uint8Array(await readFile(join(dir, file)));
  return memoryTree(name, files);
}

describe('adapters through FileTree and WritableTree', () => {
  let rt: Runtime;
  let tmp = '';
  beforeAll(async () => {
    rt = await testRuntime();
    tmp = await mkdtemp(join(tmpdir(), 'lora-tree-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('adapterFiles() and saveAdapterTo(memoryTree) hold byte for byte what saveAdapter(dir) writes', async () => {
    const model = await loadModel(rt, join(fixtures, 'qwen2', 'model'));
    // A is drawn at random, so equal bytes mean the same weights went through both savers.
    const lora = LoraModel.inject(model, { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], init_lora_weights: 'gaussian' });
    expect(lora).toBeInstanceOf(LoraModel);
    const options = { baseModelNameOrPath: 'tiny/qwen2' };
    const dir = join(tmp, 'saved');
    await lora.saveAdapter(dir, options);
    const files = await lora.adapterFiles(options);
    expect(Object.keys(files).sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
    expect(files[ADAPTER_CONFIG]).toBe(await readFile(join(dir, ADAPTER_CONFIG), 'utf8'));
    expect(files[ADAPTER_WEIGHTS]).toEqual(new Uint8Array(await readFile(join(dir, ADAPTER_WEIGHTS))));
    expect(JSON.parse(files[ADAPTER_CONFIG])).toMatchObject({ r: 4, lora_alpha: 8, base_model_name_or_path: 'tiny/qwen2', peft_type: 'LORA' });

    const out = memoryTree('opfs-adapter');
    await lora.saveAdapterTo(out, options);
    expect([...out.files.keys()]).toEqual([ADAPTER_WEIGHTS, ADAPTER_CONFIG]);
    expect(out.files.get(ADAPTER_WEIGHTS)).toEqual(files[ADAPTER_WEIGHTS]);
    expect(out.files.get(ADAPTER_CONFIG)).toBe(files[ADAPTER_CONFIG]);

    // What was written in memory loads back onto a fresh base model with the same weights.
    const again = new BrowserLoraModel(await loadModel(rt, join(fixtures, 'qwen2', 'model')));
    await again.loadAdapterFrom(out);
    const back = await SafetensorsFile.open(join(dir, ADAPTER_WEIGHTS));
    for (const [key, t] of again.trainableParameters()) expect(await t.toArray()).toEqual(await back.readF32(key));
    await back.close();
    again.model.dispose();
    model.dispose();
  });

  it('loadAdapterFrom(memoryTree of the fixture adapter) gives the same logits as loadAdapter(dir)', async () => {
    const expected = await SafetensorsFile.open(join(fixtures, 'llama', 'expected.safetensors'));
    const ids = (await expected.read('input_ids')).data as Int32Array;
    const shape = expected.info('input_ids').shape;
    const want = await expected.readF32('logits_lora');
    await expected.close();

    const logits = async (load: (lora: LoraModel) => Promise<void>) => {
      const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
      const lora = new LoraModel(model);
      await load(lora);
      lora.train(false);
      const out = tidy(() => model.forward(fromArray(rt, ids, shape, 'i32')));
      const values = await out.toArray();
      out.dispose();
      model.dispose();
      return values;
    };
    const adapterDir = join(fixtures, 'llama', 'adapter');
    const tree = await treeOf(adapterDir, 'picked-adapter');
    const fromTree = await logits((lora) => lora.loadAdapterFrom(tree));
    const fromDir = await logits((lora) => lora.loadAdapter(adapterDir));
    expect(fromTree).toEqual(fromDir);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs((fromTree[i] ?? 0) - (want[i] ?? 0)));
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('a tree without the weights or the config fails naming the tree and the file', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const lora = new BrowserLoraModel(model);
    const tree = await treeOf(join(fixtures, 'llama', 'adapter'), 'picked');
    tree.files.delete(ADAPTER_WEIGHTS);
    await expect(lora.loadAdapterFrom(tree)).rejects.toThrow(`picked: ${ADAPTER_WEIGHTS}: expected a .safetensors file of that name, got no such file`);
    const error = await lora.loadAdapterFrom(memoryTree('empty', {})).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe(`empty/${ADAPTER_CONFIG}`);
    expect(lora.adapterNames).toEqual([]);
    model.dispose();
  });
});
