// The Q/K row permutation and the refusals of the GGUF layout, on small hand-checked cases.
import { describe, expect, it } from 'vitest';
import { gguf, type GgufMetadata } from '@peft-ts/gguf';
import { parseModelConfig } from '@peft-ts/models';
import { modelMetadata, permuteRows, tensorType } from './model.js';

describe('permuteRows', () => {
  it('interleaves the two halves of each head: rows h*d + [0, d/2, 1, d/2+1, ...]', () => {
    // Two heads of dimension 4, one column: HF rows 0..7 -> llama.cpp order.
    expect(Array.from(permuteRows(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 8, 2))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // Whole rows move: one head of dimension 4 with two columns.
    expect(Array.from(permuteRows(Float32Array.from([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]), 4, 1))).toEqual([0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5]);
  });
});

const llamaConfig = (extra: Record<string, unknown>) =>
  parseModelConfig(
    {
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,
      num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128, rms_norm_eps: 1e-6, vocab_size: 100, ...extra,
    },
    'config.json',
  );

describe('modelMetadata', () => {
  it('writes head counts, epsilon, rope base and dimension as typed keys', () => {
    const md: GgufMetadata = new Map();
    modelMetadata(llamaConfig({ rope_theta: 500000 }), 'f16', 'tiny', md, 'config.json');
    expect(md.get('llama.attention.head_count_kv')).toEqual(gguf.u32(1));
    expect(md.get('llama.rope.freq_base')).toEqual(gguf.f32(500000));
    expect(md.get('llama.rope.dimension_count')).toEqual(gguf.u32(16));
    expect(md.get('general.file_type')).toEqual(gguf.u32(1));
  });

  it('refuses rope scaling llama.cpp would compute differently, naming the field', () => {
    const config = llamaConfig({ rope_theta: 10000, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } });
    expect(() => modelMetadata(config, 'f16', 'tiny', new Map(), 'config.json')).toThrow(/config.json: rope_scaling: unsupported rope scaling for GGUF export "yarn"/);
  });

  it("sets a Mistral's sliding window as the context length, with a warning", () => {
    const config = parseModelConfig(
      {
        architectures: ['MistralForCausalLM'], model_type: 'mistral', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,
        num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 4096, rms_norm_eps: 1e-5, vocab_size: 100,
        sliding_window: 1024, rope_theta: 10000,
      },
      'config.json',
    );
    const md: GgufMetadata = new Map();
    const warnings = modelMetadata(config, 'f16', 'tiny', md, 'config.json');
    expect(md.get('general.architecture')).toEqual(gguf.str('llama'));
    expect(md.get('llama.context_length')).toEqual(gguf.u32(1024));
    expect(warnings).toEqual([expect.stringMatching(/sliding-window attention \(1024 tokens\)/)]);
  });

  it('keeps 1-D tensors in f32 and falls back to f16 for q8_0 rows that are not a multiple of 32', () => {
    expect(tensorType([32], 'q8_0')).toBe('F32');
    expect(tensorType([8, 64], 'q8_0')).toBe('Q8_0');
    expect(tensorType([8, 48], 'q8_0')).toBe('F16');
  });
});
