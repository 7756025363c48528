// End to end through @peft-ts/models' loader: the transformers-saved bitsandbytes 4-bit Llama
// reproduces bitsandbytes' logits, and quantizing the f32 Llama on load gives those same logits,
// the NF4 error against the f32 model, and about 4.13 bits per parameter in GPU memory.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { fromArray, tidy, type Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel, loadModelConfig, modelLayout, type CausalLM, type Linear, type LinearLoadHook } from '@peft-ts/models/node';
import { quantizedBytes } from '../index.js';
import { HF_TINY, LLAMA_BNB_DIR } from '../test-fixtures.js';
import { Linear4bit, bnb4bitLinearHook, nf4LinearHook } from './index.js';

const LLAMA_F32 = join(HF_TINY, 'llama', 'model');

// Compile-time: the hooks are models' LinearLoadHook and a Linear4bit is a models Linear.
const hooks: LinearLoadHook[] = [bnb4bitLinearHook(), nf4LinearHook()];
const asLinear = (l: Linear4bit): Linear => l;

async function expectedLogits(path: string): Promise<{ ids: Int32Array; shape: number[]; logits: Float32Array }> {
  const f = await SafetensorsFile.open(path);
  try {
    return { ids: (await f.read('input_ids')).data as Int32Array, shape: f.info('input_ids').shape, logits: await f.readF32('logits') };
  } finally {
    await f.close();
  }
}

async function logitsOf(rt: Runtime, model: CausalLM, ids: Int32Array, shape: number[]): Promise<Float32Array> {
  const out = tidy(() => model.forward(fromArray(rt, ids, shape, 'i32')));
  const host = (await out.toArray()) as Float32Array;
  out.dispose();
  return host;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
  return m;
}

describe('load hooks for @peft-ts/models', () => {
  let rt: Runtime;
  let bnb: Awaited<ReturnType<typeof expectedLogits>>;
  beforeAll(async () => {
    rt = await testRuntime();
    bnb = await expectedLogits(join(LLAMA_BNB_DIR, 'expected.safetensors'));
  });

  it('are typed as models expects them', () => {
    expect(hooks).toHaveLength(2);
    expect(typeof asLinear).toBe('function');
  });

  it('bnb4bitLinearHook: the llama-bnb-nf4 checkpoint reproduces bitsandbytes logits within 1e-4', async () => {
    const model = await loadModel(rt, LLAMA_BNB_DIR, { linearHook: bnb4bitLinearHook() });
    const names = model.linearNames();
    expect(names).toHaveLength(14);
    for (const name of names) expect(model.getLinear(name)).toBeInstanceOf(Linear4bit);
    const got = await logitsOf(rt, model, bnb.ids, bnb.shape);
    expect(maxAbsDiff(got, bnb.logits)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('bnb4bitLinearHook leaves layers without a quant state to the dense loader', async () => {
    const f32 = await expectedLogits(join(HF_TINY, 'llama', 'expected.safetensors'));
    const model = await loadModel(rt, LLAMA_F32, { linearHook: bnb4bitLinearHook() });
    for (const name of model.linearNames()) expect(model.getLinear(name)).not.toBeInstanceOf(Linear4bit);
    expect(maxAbsDiff(await logitsOf(rt, model, f32.ids, f32.shape), f32.logits)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('nf4LinearHook: quantizing the f32 llama on load matches bitsandbytes, at ~4.13 bits per weight', async () => {
    const layout = modelLayout(await loadModelConfig(LLAMA_F32));
    const weightsOf = async (options: Parameters<typeof loadModel>[2]) => {
      const before = rt.memoryStats().byTag.weights;
      rt.resetPeak();
      const m = await loadModel(rt, LLAMA_F32, options);
      const stats = rt.memoryStats();
      return { model: m, weights: stats.byTag.weights - before, peakOver: stats.peakByTag.weights - stats.byTag.weights };
    };
    const dense = await weightsOf({});
    dense.model.dispose();
    const { model, weights, peakOver } = await weightsOf({ linearHook: nf4LinearHook({ type: 'nf4', blocksize: 64, doubleQuant: true }) });

    // Each linear takes packed + qabsmax + nested absmax instead of its f32 weight; the rest
    // (embeddings, norms, lm_head, rope tables) is the same as in the dense model.
    let linearParams = 0;
    let linearBytes = 0;
    let largestDense = 0;
    for (const l of layout.linears) {
      const n = l.inFeatures * l.outFeatures;
      const q = quantizedBytes(n, { doubleQuant: true });
      linearParams += n;
      linearBytes += q.total - q.constants;
      largestDense = Math.max(largestDense, n * 4);
    }
    expect(dense.weights - weights).toBe(linearParams * 4 - linearBytes);
    const bitsPerParam = (linearBytes * 8) / linearParams;
    expect(bitsPerParam).toBeGreaterThan(4.12);
    expect(bitsPerParam).toBeLessThan(4.14);
    // Only one layer's f32 copy ever existed beside the quantized ones.
    expect(peakOver).toBeLessThanOrEqual(largestDense);

    // The GPU quantizer is bit-identical to the CUDA kernel transformers used for the fixture;
    // only the double-quant offsets of 3 of the 14 weights differ in their last bits.
    const got = await logitsOf(rt, model, bnb.ids, bnb.shape);
    expect(maxAbsDiff(got, bnb.logits)).toBeLessThan(1e-4);
    // Against the f32 model the logits move by the NF4 error (bitsandbytes' own: 0.0885).
    const f32 = await expectedLogits(join(HF_TINY, 'llama', 'expected.safetensors'));
    expect(Array.from(f32.ids)).toEqual(Array.from(bnb.ids));
    const nf4Error = maxAbsDiff(got, f32.logits);
    expect(nf4Error).toBeGreaterThan(0.01);
    expect(nf4Error).toBeLessThan(0.15);
    model.dispose();
  });

  it('nf4LinearHook keeps skipModules dense', async () => {
    const model = await loadModel(rt, LLAMA_F32, { linearHook: nf4LinearHook({ skipModules: ['mlp.down_proj', 'layers.1'] }) });
    const quantized = model.linearNames().filter((n) => model.getLinear(n) instanceof Linear4bit);
    expect(quantized).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.0.self_attn.o_proj', 'model.layers.0.mlp.gate_proj', 'model.layers.0.mlp.up_proj']);
    model.dispose();
  });
});
