// PEFT adapters: each fixture adapter on its base reproduces PEFT's logits; what we save has
// PEFT's keys, tensors and config fields; mismatched adapters fail naming the first mismatch.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError } from '@peft-ts/errors';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { fromArray, tidy, type Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel, type Architecture } from '@peft-ts/models/node';
import { LoraModel, selectTargetModules, resolveLoraConfig } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));
const ARCHS: Architecture[] = ['llama', 'mistral', 'qwen2', 'phi3', 'gpt2'];

async function expectedOf(arch: string) {
  const f = await SafetensorsFile.open(join(fixtures, arch, 'expected.safetensors'));
  const out = {
    ids: (await f.read('input_ids')).data as Int32Array,
    shape: f.info('input_ids').shape,
    base: await f.readF32('logits'),
    lora: await f.readF32('logits_lora'),
  };
  await f.close();
  return out;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
};

describe('LoraModel', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  for (const arch of ARCHS) {
    it(`${arch}: the PEFT adapter gives logits_lora within 1e-4, and disabling it gives the base logits`, async () => {
      const model = await loadModel(rt, join(fixtures, arch, 'model'));
      const lm = new LoraModel(model);
      await lm.loadAdapter(join(fixtures, arch, 'adapter'));
      const exp = await expectedOf(arch);
      const run = () => tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32')));
      lm.train(false);
      const withLora = run();
      expect(maxAbs(await withLora.toArray(), exp.lora)).toBeLessThan(1e-4);
      const without = lm.withAdaptersDisabled(run);
      expect(maxAbs(await without.toArray(), exp.base)).toBeLessThan(1e-4);
      withLora.dispose();
      without.dispose();
      model.dispose();
    });
  }

  it('saves exactly what it loaded: PEFT keys, tensors and config fields', async () => {
    for (const arch of ['llama', 'gpt2'] as const) {
      const model = await loadModel(rt, join(fixtures, arch, 'model'));
      const lm = new LoraModel(model);
      await lm.loadAdapter(join(fixtures, arch, 'adapter'));
      const out = await mkdtemp(join(tmpdir(), 'peft-lora-'));
      await lm.saveAdapter(out);
      const ours = await SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
      const theirs = await SafetensorsFile.open(join(fixtures, arch, 'adapter', 'adapter_model.safetensors'));
      expect(ours.names().sort()).toEqual(theirs.names().sort());
      for (const n of theirs.names()) expect(await ours.readBytes(n), n).toEqual(await theirs.readBytes(n));
      expect(ours.metadata).toEqual({ format: 'pt' });
      await ours.close();
      await theirs.close();
      const ourConfig = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      const theirConfig = JSON.parse(await readFile(join(fixtures, arch, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(ourConfig).sort()).toEqual(Object.keys(theirConfig).sort());
      for (const key of ['r', 'lora_alpha', 'lora_dropout', 'bias', 'fan_in_fan_out', 'use_rslora', 'peft_type', 'task_type', 'modules_to_save']) {
        expect(ourConfig[key], key).toEqual(theirConfig[key]);
      }
      expect((ourConfig.target_modules as string[]).sort()).toEqual((theirConfig.target_modules as string[]).sort());
      model.dispose();
    }
  });

  it('round-trips a freshly injected adapter through save and load', async () => {
    const model = await loadModel(rt, join(fixtures, 'qwen2', 'model'));
    const lm = LoraModel.inject(model, { r: 4, lora_alpha: 16, target_modules: 'all-linear', init_lora_weights: false }, 'default', { seed: 3 });
    const exp = await expectedOf('qwen2');
    const before = await tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32'))).toArray();
    const dir = await mkdtemp(join(tmpdir(), 'peft-lora-rt-'));
    await lm.saveAdapter(dir, { baseModelNameOrPath: 'Qwen/Qwen2-0.5B' });
    // As PEFT writes it: the base model named, 'all-linear' resolved to the module names.
    const saved = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(saved.base_model_name_or_path).toBe('Qwen/Qwen2-0.5B');
    expect(saved.target_modules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    const model2 = await loadModel(rt, join(fixtures, 'qwen2', 'model'));
    const lm2 = new LoraModel(model2);
    await lm2.loadAdapter(dir);
    const after = await tidy(() => model2.forward(fromArray(rt, exp.ids, exp.shape, 'i32'))).toArray();
    expect(maxAbs(after, before)).toBe(0);
    expect(lm2.trainableParametersSummary().trainable).toBe(lm.trainableParametersSummary().trainable);
    model.dispose();
    model2.dispose();
  });

  it('starts from the base model with standard init (B = 0) and counts trainable params as PEFT prints them', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const lm = LoraModel.inject(model, { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] });
    const exp = await expectedOf('llama');
    const logits = await tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32'))).toArray();
    expect(maxAbs(logits, exp.base)).toBeLessThan(1e-4);
    // q_proj 64 -> 64 and v_proj 64 -> 32 on 2 layers at r = 8: 8 * (64 + 64) + 8 * (64 + 32) per layer.
    const s = lm.trainableParametersSummary();
    expect(s.trainable).toBe(2 * (8 * 128 + 8 * 96));
    expect(s.line).toMatch(/^trainable params: 3,584 \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}$/);
    model.dispose();
  });

  it('fails to load an adapter made for another model, naming the first mismatch', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const lm = new LoraModel(model);
    await expect(lm.loadAdapter(join(fixtures, 'gpt2', 'adapter'))).rejects.toThrow(FormatError);
    await expect(lm.loadAdapter(join(fixtures, 'gpt2', 'adapter'))).rejects.toThrow(/transformer\.h\.0\.attn\.c_attn.*does not have/);
    const mistral = await loadModel(rt, join(fixtures, 'phi3', 'model'));
    await expect(new LoraModel(mistral).loadAdapter(join(fixtures, 'llama', 'adapter'))).rejects.toThrow(/q_proj|down_proj|gate_proj/);
    model.dispose();
    mistral.dispose();
  });

  it("selects targets with PEFT's rules", () => {
    const names = ['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.up_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.up_proj', 'lm_head'];
    const sel = (c: Record<string, unknown>) => selectTargetModules(resolveLoraConfig(c), names, 'llama');
    expect(sel({ target_modules: ['q_proj'] })).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj']);
    expect(sel({ target_modules: 'all-linear' })).toHaveLength(4);
    expect(sel({ target_modules: '.*\\.1\\..*' })).toEqual(['model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.up_proj']);
    expect(sel({ target_modules: ['q_proj', 'up_proj'], layers_to_transform: [1] })).toEqual(['model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.up_proj']);
    expect(() => sel({ target_modules: ['c_attn'] })).toThrow(/target_modules: expected names that match linear modules of this model/);
    expect(() => resolveLoraConfig({ r: 0 })).toThrow(/r: expected a positive integer, got 0/);
    expect(() => resolveLoraConfig({ use_dora: true })).toThrow(/unsupported use_dora/);
  });
});
