// export gguf-lora, checked by llama.cpp: the base GGUF with the adapter GGUF applied by
// llama.cpp decodes the same greedy ids as the merged export and as peft-ts with the adapter.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, type Llama, type LlamaContextOptions, type Token } from 'node-llama-cpp';
import { tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { readGgufInfo } from '@peft-ts/gguf/node';
import { LoraModel } from '@peft-ts/lora/node';
import { greedy, loadModel } from '@peft-ts/models/node';
import { writeSafetensors, type TensorSource } from '@peft-ts/safetensors/node';
import { testRuntime } from '@peft-ts/tensor/testing';
import { seededUniform } from '../demo/assets.js';
import { LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { exportGguf, exportModelGguf } from './export-gguf.js';
import { exportLoraGguf } from './export-gguf-lora.js';

const HIDDEN = 32;
const MODULES: Record<string, [number, number]> = {
  'self_attn.q_proj': [HIDDEN, HIDDEN],
  'self_attn.k_proj': [HIDDEN / 2, HIDDEN],
  'self_attn.v_proj': [HIDDEN / 2, HIDDEN],
  'self_attn.o_proj': [HIDDEN, HIDDEN],
  'mlp.gate_proj': [2 * HIDDEN, HIDDEN],
  'mlp.up_proj': [2 * HIDDEN, HIDDEN],
  'mlp.down_proj': [HIDDEN, 2 * HIDDEN],
};

/** A PEFT adapter (r=4, alpha=8, rsLoRA) with seeded non-zero A and B on every linear layer. */
async function writeAdapter(dir: string, base: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = 4;
  const tensors: TensorSource[] = [];
  const rand = (name: string, shape: number[], scale: number): TensorSource => {
    const u = seededUniform(11, name);
    return { name, dtype: 'F32', shape, data: Float32Array.from({ length: (shape[0] ?? 0) * (shape[1] ?? 0) }, () => scale * (2 * u() - 1)) };
  };
  for (const [m, [outF, inF]] of Object.entries(MODULES)) {
    const p = `base_model.model.model.layers.0.${m}`;
    tensors.push(rand(`${p}.lora_A.weight`, [r, inF], 1 / Math.sqrt(inF)), rand(`${p}.lora_B.weight`, [outF, r], 0.5));
  }
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  const config = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: 8, lora_dropout: 0, use_rslora: true, bias: 'none', target_modules: Object.keys(MODULES).map((m) => m.split('.')[1]), base_model_name_or_path: base, ...extra };
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
}

let llama: Llama;
let scratch = '';
let base = '';
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'peft-gguf-lora-'));
  try {
    llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true });
  } catch (cause) {
    throw new Error(`node-llama-cpp could not load its prebuilt llama.cpp CPU binary on this machine (${process.platform}-${process.arch}); the GGUF checks need it`, { cause });
  }
  base = await writeTinyLlama({ vocabSize: 32000, maxPositions: 128, tokenizerDir: LLAMA2_TOKENIZER_DIR, hidden: HIDDEN, seed: 5 });
});
afterAll(async () => {
  await llama?.dispose();
  await rm(scratch, { recursive: true, force: true });
  await rm(base, { recursive: true, force: true });
});

async function cppGreedy(file: string, prompt: number[], context: Partial<LlamaContextOptions> = {}): Promise<number[]> {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  try {
    const ctx = await model.createContext({ contextSize: 128, threads: 2, ...context });
    const ids: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      ids.push(t);
      if (ids.length >= 32 || t === 2) break;
    }
    await ctx.dispose();
    return ids;
  } finally {
    await model.dispose();
  }
}

describe('export gguf-lora', () => {
  it('llama.cpp applying the adapter GGUF, the merged GGUF and peft-ts with the adapter decode the same 32 greedy ids', async () => {
    const adapter = join(scratch, 'adapter');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(adapter);
    await writeAdapter(adapter, base);
    const tokenizer = await tokenizerFromDir(base);
    const prompt = tokenizer.encode('Once upon a time', { addSpecialTokens: true });

    const rt = await testRuntime();
    const model = await loadModel(rt, base);
    const plain = await greedy(model, prompt, 32);
    const lora = new LoraModel(model);
    await lora.loadAdapter(adapter);
    lora.train(false);
    const ours = await greedy(model, prompt, 32);
    model.dispose();
    expect(ours).not.toEqual(plain);

    const baseFile = join(scratch, 'base.gguf');
    const loraFile = join(scratch, 'adapter.gguf');
    const mergedFile = join(scratch, 'merged.gguf');
    await exportModelGguf(base, baseFile, 'f32');
    const r = await exportLoraGguf(adapter, base, loraFile);
    // rsLoRA: llama.cpp scales by alpha / r, so alpha is stored as 8 * sqrt(4).
    expect(r).toEqual({ arch: 'llama', tensors: 14, alpha: 16, rank: 4 });
    const info = await readGgufInfo(loraFile);
    expect(info.metadata.get('general.type')).toBe('adapter');
    expect(info.metadata.get('adapter.type')).toBe('lora');
    expect(info.tensors.map((t) => t.name)).toContain('blk.0.attn_q.weight.lora_b');
    expect(await exportGguf([base, mergedFile, '--adapter', adapter, '--type', 'f32'])).toBe(0);

    expect(await cppGreedy(baseFile, prompt)).toEqual(plain);
    expect(await cppGreedy(baseFile, prompt, { lora: { adapters: [{ filePath: loraFile }] } })).toEqual(ours);
    expect(await cppGreedy(mergedFile, prompt)).toEqual(ours);
  });

  it('refuses modules_to_save and DoRA, naming them', async () => {
    for (const [extra, message] of [
      [{ modules_to_save: ['lm_head'] }, /modules_to_save/],
      [{ use_dora: true }, /use_dora/],
    ] as const) {
      const dir = await mkdtemp(join(scratch, 'bad-'));
      await writeAdapter(dir, base, extra);
      await expect(exportLoraGguf(dir, base, join(dir, 'out.gguf'))).rejects.toThrow(message);
    }
  });
});
