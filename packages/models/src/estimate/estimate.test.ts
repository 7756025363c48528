// Memory estimates against published parameter counts and the seeds' arithmetic
// (7B: fp32 28 GB, fp16 14 GB, NF4 ~3.5 GB; Adam 12 bytes/param for full fine-tuning).
import { describe, expect, it } from 'vitest';
import { UnsupportedError } from '@peft-ts/errors';
import { countParameters, estimateMemory, namedConfig, nf4Bytes, selectTargets } from '../index.js';

describe('estimateMemory', () => {
  it('counts parameters as the published model cards do', () => {
    expect(countParameters(namedConfig('7b')).total).toBe(6_738_415_616); // Llama-2-7B
    expect(countParameters(namedConfig('gpt2')).total).toBe(124_439_808); // GPT-2 small, tied head
    expect(countParameters(namedConfig('tinyllama-1.1b')).total).toBe(1_100_048_384);
    expect(countParameters(namedConfig('qwen2.5-0.5b')).total).toBe(494_032_768);
    expect(countParameters(namedConfig('8b')).total).toBe(8_030_261_248); // Llama-3-8B
  });

  it('gives the 7B weight sizes of the seeds: fp32 ~27 GB, fp16 ~13.5 GB, NF4 ~3.6 GB', () => {
    const c = namedConfig('7b');
    const p = countParameters(c);
    expect(estimateMemory(c, { method: 'full', weightDtype: 'f32' }).bytes.weights).toBe(p.total * 4);
    // LoRA adds its f32 A and B matrices (q_proj and v_proj at r=16 by default) to the frozen weights.
    const lora = estimateMemory(c, { method: 'lora', weightDtype: 'f16' });
    expect(lora.bytes.weights).toBe(p.total * 2 + lora.params.trainable * 4);
    const q = estimateMemory(c, { method: 'qlora' });
    // Linear weights at 4.127 bits/param (0.5 B + 1 B per 64 + 4 B per 16,384), the rest in bf16.
    const linearBits = (nf4Bytes(4096 * 4096) * 8) / (4096 * 4096);
    expect(linearBits).toBeCloseTo(4 + 8 / 64 + 32 / 16384, 2);
    expect(q.bytes.weights / 1e9).toBeGreaterThan(3.8);
    expect(q.bytes.weights / 1e9).toBeLessThan(3.9);
    expect(q.bytes.weights).toBeCloseTo(p.linear * (linearBits / 8) + p.other * 2 + q.params.trainable * 4, -6);
  });

  it('charges 12 optimizer bytes per parameter for mixed-precision full fine-tuning with AdamW', () => {
    const c = namedConfig('7b');
    const e = estimateMemory(c, { method: 'full', optimizer: 'adamw' });
    expect(e.bytes.optimizer).toBe(e.params.total * 12);
    expect(e.bytes.gradients).toBe(e.params.total * 2);
    expect(e.params.trainable).toBe(e.params.total);
  });

  it('counts LoRA trainable parameters as PEFT prints them', () => {
    const c = namedConfig('7b');
    // q_proj + v_proj at r=8 on Llama-2-7B: PEFT reports 4,194,304 trainable params.
    const e = estimateMemory(c, { method: 'lora', r: 8, targets: ['q_proj', 'v_proj'] });
    expect(e.params.trainable).toBe(4_194_304);
    expect(e.bytes.gradients).toBe(4_194_304 * 4);
    expect(e.bytes.optimizer).toBe(4_194_304 * 8);
    expect(estimateMemory(c, { method: 'lora', r: 8, targets: ['q_proj', 'v_proj'], optimizer: 'paged_adamw8bit' }).bytes.optimizer).toBe(4_194_304 * 2);
    expect(selectTargets(c, 'all-linear')).toHaveLength(7 * 32);
  });

  it('shrinks activations with gradient checkpointing and grows them with the tokens of a step', () => {
    const c = namedConfig('tinyllama-1.1b');
    const at = (seqLen: number, checkpointing: boolean) => estimateMemory(c, { method: 'qlora', seqLen, checkpointing }).bytes.activations;
    // Attention keeps no T x T scores: past the fixed terms (rotary tables, a decoded 4-bit weight)
    // every buffer is linear in tokens, so doubling the sequence about doubles the increment.
    for (const ckpt of [true, false]) {
      expect((at(1024, ckpt) - at(512, ckpt)) / (at(512, ckpt) - at(256, ckpt))).toBeCloseTo(2, 1);
    }
    // Checkpointing keeps each layer's output and one layer's recomputation instead of every layer's tensors.
    expect(at(512, true)).toBeLessThan(at(512, false) / 2);
  });

  it('names every term of the activation estimate in its notes', () => {
    const e = estimateMemory(namedConfig('tinyllama-1.1b'), { method: 'qlora', r: 16, targets: 'all-linear', batch: 1, seqLen: 128 });
    const notes = e.notes.join('\n');
    expect(notes).toMatch(/forward, held to the end of the step: .*each layer's input.*logits 16\.38 MB/);
    expect(notes).toMatch(/one layer recomputed in backward: /);
    expect(notes).toMatch(/backward: gradients of activations and temporaries /);
    expect(notes).toMatch(/a 4-bit weight decoded whole to f32 for one product: 46\.14 MB/);
    expect(notes).toMatch(/tables: rotary 1\.05 MB/);
    expect(notes).toMatch(/size class/);
    expect(notes).toMatch(/f32 weights 50\.46 MB/);
    const tiles = estimateMemory(namedConfig('tinyllama-1.1b'), { method: 'qlora', r: 16, targets: 'all-linear', batch: 1, seqLen: 128, decode4bit: 'tiles' });
    expect(e.bytes.activations - tiles.bytes.activations).toBeGreaterThan(0);
    expect(e.bytes.activations - tiles.bytes.activations).toBeLessThanOrEqual(5632 * 2048 * 4);
  });

  it('rejects unknown targets and size names, naming what exists', () => {
    expect(() => estimateMemory(namedConfig('7b'), { method: 'lora', targets: ['c_attn'] })).toThrow(UnsupportedError);
    expect(() => estimateMemory(namedConfig('7b'), { method: 'lora', targets: ['c_attn'] })).toThrow(/q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/);
    expect(() => namedConfig('3b')).toThrow(/supported: gpt2, qwen2.5-0.5b/);
  });
});
