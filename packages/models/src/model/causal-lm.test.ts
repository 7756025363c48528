// The five architectures against transformers' golden logits and greedy generations, the BF16
// checkpoint, gradient checkpointing, and the loader's errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { SafetensorsFile, writeSafetensors } from '@peft-ts/safetensors/node';
import { backward, fromArray, onesLike, tidy, type Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { generate, loadModel, type Architecture } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));
const ARCHS: Architecture[] = ['llama', 'mistral', 'qwen2', 'phi3', 'gpt2'];

interface Meta {
  greedy_prompt: number[];
  greedy_out: number[];
}

async function expected(arch: string, file = 'expected.safetensors') {
  const f = await SafetensorsFile.open(join(fixtures, arch, file));
  const ids = (await f.read('input_ids')).data as Int32Array;
  const logits = await f.readF32('logits');
  const shape = f.info('input_ids').shape;
  await f.close();
  return { ids, logits, shape };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return a.length === b.length ? m : Infinity;
}

describe('CausalLM', () => {
  let rt: Runtime;
  let meta: Record<string, Meta>;
  beforeAll(async () => {
    rt = await testRuntime();
    meta = JSON.parse(await readFile(join(fixtures, 'meta.json'), 'utf8')) as Record<string, Meta>;
  });

  for (const arch of ARCHS) {
    it(`${arch}: logits match transformers within 1e-4`, async () => {
      const model = await loadModel(rt, join(fixtures, arch, 'model'));
      const exp = await expected(arch);
      const logits = tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32')));
      const got = await logits.toArray();
      logits.dispose();
      expect(maxAbsDiff(got, exp.logits)).toBeLessThan(1e-4);
      model.dispose();
    });

    it(`${arch}: greedy generation equals transformers' generate()`, async () => {
      const model = await loadModel(rt, join(fixtures, arch, 'model'));
      const m = meta[arch];
      if (!m) throw new Error(`meta.json has no ${arch}`);
      const streamed: number[] = [];
      const r = await generate(model, [m.greedy_prompt], { maxNewTokens: 10, onToken: (e) => streamed.push(e.token) });
      expect(r.tokens[0]).toEqual(m.greedy_out);
      expect(streamed).toEqual(m.greedy_out);
      expect(r.finishReasons[0]).toBe(m.greedy_out.length < 10 ? 'eos' : 'length');
      model.dispose();
    });
  }

  it('runs the BF16 checkpoint (bf16 storage widened in-shader) like transformers', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model-bf16'));
    const exp = await expected('llama', 'expected-bf16.safetensors');
    const logits = tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32')));
    expect(maxAbsDiff(await logits.toArray(), exp.logits)).toBeLessThan(1e-4);
    logits.dispose();
    model.dispose();
  });

  it('gives the same logits and input gradients with gradient checkpointing', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const exp = await expected('llama');
    const embed = model.getTensor('model.embed_tokens.weight');
    embed.requiresGrad = true;
    const results: Float32Array[] = [];
    for (const on of [false, true]) {
      model.setGradientCheckpointing(on);
      tidy(() => {
        const logits = model.forward(fromArray(rt, exp.ids, exp.shape, 'i32'));
        backward(logits, onesLike(logits));
      });
      results.push((await embed.grad?.toArray()) as Float32Array);
      embed.grad?.dispose();
      embed.grad = null;
    }
    expect(maxAbsDiff(results[0] ?? [], results[1] ?? [])).toBeLessThan(1e-5);
    expect(maxAbsDiff(results[0] ?? [], new Float32Array(results[0]?.length ?? 0))).toBeGreaterThan(0);
    embed.requiresGrad = false;
    model.dispose();
  });

  it('keeps the residual stream in f16 between layers when asked, close to f32 and with checkpointing', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const exp = await expected('llama');
    const embed = model.getTensor('model.embed_tokens.weight');
    embed.requiresGrad = true;
    const run = async () => {
      const logits = tidy(() => model.forward(fromArray(rt, exp.ids, exp.shape, 'i32')));
      tidy(() => backward(logits, onesLike(logits)));
      const out = { logits: await logits.toArray(), grad: (await embed.grad?.toArray()) as Float32Array };
      logits.dispose();
      embed.grad?.dispose();
      embed.grad = null;
      return out;
    };
    const f32 = await run();
    model.activationDtype = 'f16';
    model.setGradientCheckpointing(true);
    const f16 = await run();
    // Residual values near 1 round to f16 with relative error 2^-11; through two layers the
    // logits (|x| < 3) move by a few 1e-3 at most.
    expect(maxAbsDiff(f16.logits, exp.logits)).toBeLessThan(1e-2);
    expect(maxAbsDiff(f16.logits, exp.logits)).toBeGreaterThan(0);
    const scale = f32.grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxAbsDiff(f16.grad, f32.grad) / scale).toBeLessThan(1e-2);
    embed.requiresGrad = false;
    model.dispose();
  });

  describe('loader errors', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'peft-models-'));
    });

    it('names a missing tensor', async () => {
      const src = await SafetensorsFile.open(join(fixtures, 'llama/model/model.safetensors'));
      const d = join(dir, 'missing');
      await cp(join(fixtures, 'llama/model'), d, { recursive: true });
      await writeSafetensors(join(d, 'model.safetensors'), src.sources().filter((s) => s.name !== 'model.layers.1.mlp.up_proj.weight'));
      await src.close();
      await expect(loadModel(rt, d)).rejects.toThrow(FormatError);
      await expect(loadModel(rt, d)).rejects.toThrow(/tensor "model.layers.1.mlp.up_proj.weight": expected every tensor of a LlamaForCausalLM with 2 layers, got missing/);
    });

    it('names a tensor of the wrong shape', async () => {
      const d = join(dir, 'shape');
      await cp(join(fixtures, 'llama/model'), d, { recursive: true });
      const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
      config.intermediate_size = 128;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
      await expect(loadModel(rt, d)).rejects.toThrow(/tensor "model.layers.0.mlp.gate_proj.weight".shape: expected \[128, 64\] for this config, got \[160, 64\]/);
    });

    it('names a missing shard', async () => {
      const d = join(dir, 'shard');
      await cp(join(fixtures, 'llama/model'), d, { recursive: true });
      await rm(join(d, 'model.safetensors'));
      await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 1 }, weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors' } }));
      await expect(loadModel(rt, d)).rejects.toThrow(/model-00001-of-00002.safetensors/);
    });

    it('refuses an unsupported config before touching weights', async () => {
      const d = join(dir, 'unsupported');
      await cp(join(fixtures, 'llama/model'), d, { recursive: true });
      await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'mamba' }));
      await expect(loadModel(rt, d)).rejects.toThrow(UnsupportedError);
    });
  });
});
