// Merging against PEFT's merged checkpoints and logits, in memory and into a checkpoint directory,
// unmerge, and the QLoRA drift report.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { fromArray, tidy, type Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel, type Architecture } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora/node';
import { memoryTree } from '@peft-ts/safetensors';
import { qloraMergeDriftFrom } from '../index.js';
import { mergeAdapter, mergeAndUnload, mergeIntoCheckpoint, qloraMergeDrift, unmergeAdapter } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));
const ARCHS: Architecture[] = ['llama', 'mistral', 'qwen2', 'phi3', 'gpt2'];

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
};

async function expectedOf(arch: string) {
  const f = await SafetensorsFile.open(join(fixtures, arch, 'expected.safetensors'));
  const out = { ids: (await f.read('input_ids')).data as Int32Array, shape: f.info('input_ids').shape, lora: await f.readF32('logits_lora'), merged: await f.readF32('logits_merged'), base: await f.readF32('logits') };
  await f.close();
  return out;
}

describe('merge', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  for (const arch of ARCHS) {
    it(`${arch}: merging into the checkpoint reproduces PEFT's merged weights within 1e-6 and its logits`, async () => {
      const out = join(await mkdtemp(join(tmpdir(), 'peft-merge-')), 'merged');
      const seen: string[] = [];
      const r = await mergeIntoCheckpoint(rt, join(fixtures, arch, 'model'), join(fixtures, arch, 'adapter'), out, { onProgress: (p) => seen.push(p.tensor) });
      expect(r.mergedModules).toBeGreaterThan(0);
      const ours = await SafetensorsFile.open(join(out, 'model.safetensors'));
      const theirs = await SafetensorsFile.open(join(fixtures, arch, 'merged', 'model.safetensors'));
      expect(ours.names().sort()).toEqual(theirs.names().sort());
      for (const n of theirs.names()) expect(maxAbs(await ours.readF32(n), await theirs.readF32(n)), n).toBeLessThanOrEqual(1e-6);
      await ours.close();
      await theirs.close();
      expect(seen.length).toBe(ours.names().length);
      expect(await readdir(out)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));
      const merged = await loadModel(rt, out);
      const exp = await expectedOf(arch);
      const logits = tidy(() => merged.forward(fromArray(rt, exp.ids, exp.shape, 'i32')));
      expect(maxAbs(await logits.toArray(), exp.merged)).toBeLessThan(1e-4);
      logits.dispose();
      merged.dispose();
    });
  }

  it('merges in memory (logits equal the adapter logits), unmerges, and unloads to a plain model', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const lm = new LoraModel(model);
    await lm.loadAdapter(join(fixtures, 'llama', 'adapter'));
    lm.train(false);
    const exp = await expectedOf('llama');
    const logits = async () => {
      const t = tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32')));
      const a = await t.toArray();
      t.dispose();
      return a;
    };
    mergeAdapter(lm);
    expect(maxAbs(await logits(), exp.lora)).toBeLessThan(1e-4);
    expect(maxAbs(await logits(), exp.merged)).toBeLessThan(1e-4);
    unmergeAdapter(lm);
    expect(maxAbs(await lm.withAdaptersDisabled(logits), exp.base)).toBeLessThan(1e-4);
    expect(maxAbs(await logits(), exp.lora)).toBeLessThan(1e-4);
    const plain = mergeAndUnload(lm);
    expect(plain.linearNames().every((n) => plain.getLinear(n).constructor.name === 'DenseLinear')).toBe(true);
    expect(maxAbs(await logits(), exp.merged)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('writes a config without quantization_config and copies generation settings', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'peft-merge-cfg-')), 'm');
    await mergeIntoCheckpoint(rt, join(fixtures, 'llama', 'model'), join(fixtures, 'llama', 'adapter'), out, { dtype: 'bf16' });
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.dtype).toBe('bfloat16');
    expect(await readdir(out)).toContain('generation_config.json');
    const f = await SafetensorsFile.open(join(out, 'model.safetensors'));
    expect(f.info('model.layers.0.self_attn.q_proj.weight').dtype).toBe('BF16');
    await f.close();
    await expect(mergeIntoCheckpoint(rt, join(fixtures, 'llama', 'model'), join(fixtures, 'llama', 'adapter'), out)).rejects.toThrow(/already exists/);
    await expect(mergeIntoCheckpoint(rt, join(fixtures, 'llama', 'model'), join(fixtures, 'gpt2', 'adapter'), `${out}-x`)).rejects.toThrow(/transformer\.h\.0\.attn\.c_attn/);
  });

  it('reports the per-layer drift of merging a QLoRA adapter into 16-bit weights', async () => {
    const drift = await qloraMergeDrift(rt, join(fixtures, 'llama', 'model'), join(fixtures, 'llama', 'adapter'));
    expect(drift.length).toBe(14);
    for (const d of drift) {
      expect(d.maxAbs).toBeGreaterThan(0);
      expect(d.meanAbs).toBeLessThanOrEqual(d.maxAbs);
      expect(d.meanAbsUpdate).toBeGreaterThan(0);
      expect(d.ratio).toBeCloseTo(d.meanAbs / d.meanAbsUpdate, 10);
    }
    // The main entry gives the same report from the same files held in memory.
    const inMemory = async (dir: string, name: string) => {
      const files: Record<string, Uint8Array> = {};
      for (const file of await readdir(dir)) files[file] = new Uint8Array(await readFile(join(dir, file)));
      return memoryTree(name, files);
    };
    const fromTrees = await qloraMergeDriftFrom(rt, await inMemory(join(fixtures, 'llama', 'model'), 'base'), await inMemory(join(fixtures, 'llama', 'adapter'), 'adapter'));
    expect(fromTrees).toEqual(drift);
    await expect(qloraMergeDriftFrom(rt, memoryTree('empty', {}), memoryTree('adapter', {}))).rejects.toThrow('empty: config.json: expected a file of that name, got no such file');
  });
});
