// Config parsing for the five fixture architectures (both rope layouts), the layout against the
// real checkpoints' tensor names and shapes, and the errors for configs we cannot run.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { countParameters, loadModelConfig, modelLayout, parseModelConfig, type Architecture } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));
const ARCHS: Architecture[] = ['llama', 'mistral', 'qwen2', 'phi3', 'gpt2'];

describe('model config', () => {
  it('reads every fixture config into the normalised form', async () => {
    const llama = await loadModelConfig(`${fixtures}llama/model`);
    expect(llama).toMatchObject({
      arch: 'llama',
      vocabSize: 320,
      hiddenSize: 64,
      intermediateSize: 160,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      normEps: 1e-6,
      rope: { type: 'default', theta: 10000, partialRotaryFactor: 1 },
      tieWordEmbeddings: false,
      qkvBias: false,
      eosTokenIds: [2],
    });
    const qwen = await loadModelConfig(`${fixtures}qwen2/model`);
    expect(qwen).toMatchObject({ arch: 'qwen2', qkvBias: true, oBias: false, tieWordEmbeddings: true, rope: { theta: 1e6 }, slidingWindow: null });
    const phi = await loadModelConfig(`${fixtures}phi3/model`);
    expect(phi).toMatchObject({ arch: 'phi3', numKvHeads: 4, padTokenId: 0, normEps: 1e-5 });
    const gpt2 = await loadModelConfig(`${fixtures}gpt2/model`);
    expect(gpt2).toMatchObject({ arch: 'gpt2', norm: 'layer', activation: 'gelu_new', rope: null, headDim: 16, intermediateSize: 256, maxPositions: 128, tieWordEmbeddings: true });
    const mistral = await loadModelConfig(`${fixtures}mistral/model`);
    expect(mistral).toMatchObject({ arch: 'mistral', slidingWindow: null, normEps: 1e-5 });
  });

  it('accepts the transformers-4 layout: top-level rope_theta and rope_scaling', () => {
    const c = parseModelConfig({
      model_type: 'llama',
      vocab_size: 128256,
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      max_position_embeddings: 131072,
      rope_theta: 500000.0,
      rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    });
    expect(c.rope).toEqual({ type: 'llama3', theta: 500000, partialRotaryFactor: 1, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    const phiLong = parseModelConfig({
      model_type: 'phi3',
      vocab_size: 32064,
      hidden_size: 3072,
      intermediate_size: 8192,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      max_position_embeddings: 131072,
      original_max_position_embeddings: 4096,
      rope_scaling: { type: 'longrope', short_factor: [1, 1.5], long_factor: [2, 3] },
    });
    expect(phiLong.rope).toMatchObject({ type: 'longrope', originalMaxPositions: 4096, shortFactor: [1, 1.5], longFactor: [2, 3] });
  });

  it('lays out exactly the tensors of each fixture checkpoint, with their shapes', async () => {
    for (const arch of ARCHS) {
      const config = await loadModelConfig(`${fixtures}${arch}/model`);
      const layout = modelLayout(config);
      const expected = new Map<string, number[]>();
      for (const l of [...layout.linears, ...(layout.lmHead ? [layout.lmHead] : [])]) {
        expected.set(`${l.name}.weight`, l.conv1d ? [l.inFeatures, l.outFeatures] : [l.outFeatures, l.inFeatures]);
      }
      for (const t of layout.others) expected.set(t.name, t.shape);
      const file = await SafetensorsFile.open(`${fixtures}${arch}/model/model.safetensors`);
      const actual = new Map(file.names().map((n) => [n, file.info(n).shape]));
      await file.close();
      // GPT-2 checkpoints also carry the non-parameter causal-mask buffers `attn.bias`/`attn.masked_bias` in some
      // versions; transformers 5 writes none, so the sets must match exactly.
      expect([...actual.keys()].sort(), arch).toEqual([...expected.keys()].sort());
      for (const [name, shape] of expected) expect(actual.get(name), `${arch} ${name}`).toEqual(shape);
      const numel = [...actual.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
      expect(countParameters(config).total, arch).toBe(numel);
    }
  });

  it('fails on an unknown model_type, naming the supported ones', () => {
    expect(() => parseModelConfig({ model_type: 'falcon' }, 'x/config.json')).toThrow(UnsupportedError);
    expect(() => parseModelConfig({ model_type: 'falcon' }, 'x/config.json')).toThrow(/x\/config.json: unsupported model_type "falcon"; supported: llama, mistral, qwen2, phi3, gpt2/);
    expect(() => parseModelConfig({ model_type: 'llama', architectures: ['LlamaForSequenceClassification'] })).toThrow(/unsupported architecture/);
  });

  it('names the field on a malformed or unsupported config', () => {
    const base = { model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 32 };
    expect(() => parseModelConfig({ ...base, hidden_size: '8' }, 'c.json')).toThrow(FormatError);
    expect(() => parseModelConfig({ ...base, hidden_size: '8' }, 'c.json')).toThrow(/c.json: hidden_size: expected a non-negative integer, got "8"/);
    expect(() => parseModelConfig({ ...base, num_key_value_heads: 3 }, 'c.json')).toThrow(/num_key_value_heads: expected a divisor of num_attention_heads \(2\)/);
    expect(() => parseModelConfig({ ...base, rope_scaling: { rope_type: 'mrope' } }, 'c.json')).toThrow(/unsupported rope type "mrope"/);
    expect(() => parseModelConfig({ ...base, rope_scaling: { rope_type: 'linear' } }, 'c.json')).toThrow(/rope_scaling.factor: expected a scaling factor/);
    expect(() => parseModelConfig({ ...base, hidden_act: 'relu' }, 'c.json')).toThrow(/unsupported hidden_act "relu"/);
    expect(() => parseModelConfig([1, 2])).toThrow(/expected a JSON object/);
  });

  it('reports a missing or unreadable config.json by path', async () => {
    await expect(loadModelConfig('/nonexistent-dir')).rejects.toThrow(/\/nonexistent-dir\/config.json: \(file\): expected a readable config.json/);
  });
});
