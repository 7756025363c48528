// `estimateMemory` against the runtime's own accounting: real training steps through the Trainer
// on tiny models of each layout and method, and the estimate must cover the measured peak
// (never below it) while staying within 10% of it.
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromArray, full, mul, randn, scalar, tidy, type Runtime, type Tensor } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { CausalLM, DenseLinear, estimateMemory, modelLayout, parseModelConfig, type Linear, type ModelConfig } from '@peft-ts/models';
import { LoraModel } from '@peft-ts/lora';
import { Linear4bit, quantize4bitGpu } from '@peft-ts/nf4-quant/gpu';
import { createOptimizer, Trainer, type BatchSource } from '../index.js';
import { outputDirStore } from '../node.js';

interface Case {
  name: string;
  config: Record<string, unknown>;
  method: 'lora' | 'qlora';
  batch: number;
  seq: number;
  r: number;
  checkpointing: boolean;
  activationDtype: 'f32' | 'f16';
  targets?: string[];
  dropout?: number;
}

const llama = { model_type: 'llama', vocab_size: 256, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 };
const gpt2 = { model_type: 'gpt2', vocab_size: 256, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 128 };
// Qwen2: biases on q/k/v, an embedding tied to the head; a vocabulary large enough that the logits dominate.
const qwen2 = { model_type: 'qwen2', vocab_size: 4096, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 128, tie_word_embeddings: true };
const phi3 = { model_type: 'phi3', vocab_size: 512, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 128 };
// The bench's small shape: 4 layers, d 256, an 8,192-token vocabulary, 128-token rows.
const small = { model_type: 'llama', vocab_size: 8192, hidden_size: 256, intermediate_size: 672, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 256 };
// Wide layers and few tokens: a 4-bit weight decoded whole to f32 is the largest buffer of the step.
const wide = { model_type: 'llama', vocab_size: 256, hidden_size: 128, intermediate_size: 1024, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 64 };
const base = { method: 'lora', batch: 2, seq: 32, r: 8, checkpointing: false, activationDtype: 'f32' } as const;

const CASES: Case[] = [
  { ...base, name: 'llama lora', config: llama },
  { ...base, name: 'llama lora, checkpointing', config: llama, checkpointing: true },
  { ...base, name: 'llama lora, batch 1 x 64, r 4', config: llama, batch: 1, seq: 64, r: 4 },
  { ...base, name: 'llama lora, f16 activations, checkpointing', config: llama, activationDtype: 'f16', checkpointing: true },
  { ...base, name: 'llama qlora', config: llama, method: 'qlora' },
  { ...base, name: 'llama qlora, checkpointing, r 16, batch 3 x 24', config: llama, method: 'qlora', checkpointing: true, r: 16, batch: 3, seq: 24 },
  { ...base, name: 'llama qlora, f16 activations', config: llama, method: 'qlora', activationDtype: 'f16' },
  { ...base, name: 'llama qlora, wide MLP, batch 1 x 16 (a decoded weight at the peak)', config: wide, method: 'qlora', batch: 1, seq: 16 },
  { ...base, name: 'llama lora, q/v targets, dropout 0.1', config: llama, targets: ['q_proj', 'v_proj'], dropout: 0.1 },
  { ...base, name: 'gpt2 lora', config: gpt2 },
  { ...base, name: 'gpt2 lora, checkpointing, f16 activations, batch 4 x 16', config: gpt2, checkpointing: true, activationDtype: 'f16', batch: 4, seq: 16 },
  { ...base, name: 'qwen2 lora, tied 4096-token vocabulary', config: qwen2 },
  { ...base, name: 'qwen2 qlora, checkpointing', config: qwen2, method: 'qlora', checkpointing: true },
  { ...base, name: 'phi3 lora (fused qkv and gate_up)', config: phi3 },
  { ...base, name: 'small llama qlora, checkpointing, batch 1 x 128, r 16', config: small, method: 'qlora', checkpointing: true, batch: 1, seq: 128, r: 16 },
];

/** A weight drawn from N(0, 0.02^2) on the device. */
function randomWeight(rt: Runtime, shape: number[]): Tensor {
  return tidy(() => mul(randn(rt, shape), scalar(rt, 0.02))).keep();
}

/** The model with random f32 weights made on the device; linear weights quantized to NF4 for QLoRA. */
async function buildModel(rt: Runtime, config: ModelConfig, method: 'lora' | 'qlora'): Promise<CausalLM> {
  const layout = modelLayout(config);
  const tensors = new Map<string, Tensor>();
  for (const t of layout.others) {
    if (t.kind === 'bias') continue;
    tensors.set(t.name, t.kind === 'norm' ? full(rt, [...t.shape], t.name.endsWith('.bias') ? 0 : 1, 'f32', { tag: 'weights' }).keep() : randomWeight(rt, [...t.shape]));
  }
  const linears = new Map<string, Linear>();
  for (const l of layout.linears) {
    const bias = l.bias ? fromArray(rt, new Float32Array(l.outFeatures), [l.outFeatures], 'f32', { tag: 'weights' }).keep() : null;
    const weight = randomWeight(rt, [l.outFeatures, l.inFeatures]);
    if (method === 'qlora') {
      const q = await quantize4bitGpu(weight, { doubleQuant: true });
      weight.dispose();
      linears.set(l.name, new Linear4bit(l.name, q, bias));
    } else {
      linears.set(l.name, new DenseLinear(l.name, weight, bias));
    }
  }
  const lmHead = layout.lmHead ? new DenseLinear('lm_head', randomWeight(rt, [layout.lmHead.outFeatures, layout.lmHead.inFeatures])) : null;
  return new CausalLM(rt, { config, linears, tensors, lmHead });
}

/** Full rows of deterministic tokens, every position a label. */
function batches(batch: number, seq: number, vocab: number): BatchSource {
  return {
    numBatches: () => 4,
    batchAt: (_epoch, index) => {
      const ids = Int32Array.from({ length: batch * seq }, (_, k) => (k * 31 + index * 7 + 3) % vocab);
      return { inputIds: ids, attentionMask: new Int32Array(batch * seq).fill(1), labels: ids, batchSize: batch, seqLen: seq };
    },
  };
}

describe('estimateMemory against measured training steps', () => {
  it.each(CASES)('$name: the estimate covers the peak, within 10%', async (c) => {
    const rt = await testRuntime();
    rt.manualSeed(7);
    const config = parseModelConfig(c.config, c.name);
    const model = await buildModel(rt, config, c.method);
    model.activationDtype = c.activationDtype;
    const lora = LoraModel.inject(model, { r: c.r, lora_alpha: 2 * c.r, lora_dropout: c.dropout ?? 0, target_modules: c.targets ?? 'all-linear' });
    const outputDir = await mkdtemp(join(tmpdir(), 'peft-memory-'));
    try {
      const trainer = new Trainer({
        model,
        lora,
        train: batches(c.batch, c.seq, config.vocabSize),
        createOptimizer: (params) => createOptimizer(rt, [...params.values()], { name: 'adamw', lr: 1e-3, weightDecay: 0 }),
        output: outputDirStore(outputDir),
        lr: 1e-3,
        maxSteps: 2,
        gradientCheckpointing: c.checkpointing,
        progress: false,
      });
      // The trainer resets the peak once the model, adapter and optimizer exist; its summary reports it.
      const measured = (await trainer.train()).peakGpuBytes;
      const estimate = estimateMemory(config, {
        method: c.method,
        r: c.r,
        targets: c.targets ?? 'all-linear',
        batch: c.batch,
        seqLen: c.seq,
        checkpointing: c.checkpointing,
        weightDtype: 'f32',
        activationDtype: c.activationDtype,
        loraDropout: c.dropout ?? 0,
      }).bytes.total;
      expect(estimate, `estimate ${estimate} vs measured ${measured}`).toBeGreaterThanOrEqual(measured);
      expect(estimate, `estimate ${estimate} vs measured ${measured}`).toBeLessThanOrEqual(1.1 * measured);
    } finally {
      model.dispose();
      rt.trimPool();
      await rm(outputDir, { recursive: true, force: true });
    }
  });
});
