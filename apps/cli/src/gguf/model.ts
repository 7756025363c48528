// A Hugging Face checkpoint -> llama.cpp's GGUF layout: the architecture name, hyperparameter
// keys and tensor names of each supported family, and the Q/K row permutation that Llama and
// Mistral checkpoints need (HF rotates halves of each head; llama.cpp's "llama" rope rotates
// adjacent pairs).
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { encodeTensor, gguf, type GgmlTypeName, type GgufMetadata, type GgufTensorSource } from '@peft-ts/gguf';
import type { ModelConfig } from '@peft-ts/models';
import type { Checkpoint } from '@peft-ts/safetensors';

export type GgufOutType = 'f32' | 'f16' | 'bf16' | 'q8_0';
const GGML_OF: Record<GgufOutType, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0' };
/** general.file_type (llama_ftype) of each output type. */
const FILE_TYPE: Record<GgufOutType, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

export type GgufArch = 'llama' | 'qwen2' | 'phi3' | 'gpt2';

export function ggufArch(config: ModelConfig): GgufArch {
  return config.arch === 'mistral' ? 'llama' : config.arch;
}

/** What to do with an HF tensor on its way into the file. */
export type RowTransform = { kind: 'none' } | { kind: 'permute'; heads: number } | { kind: 'transpose' };

export interface PlannedTensor {
  gguf: string;
  hf: string;
  transform: RowTransform;
}

/**
 * Reorders the rows of a [heads * headDim, cols] matrix (or a [heads * headDim] bias) from
 * HF's per-head [first halves | second halves] to llama.cpp's interleaved pairs: new row
 * h*d + 2i + j takes old row h*d + j*d/2 + i.
 */
export function permuteRows(values: Float32Array, rows: number, heads: number): Float32Array {
  const cols = values.length / rows;
  const d = rows / heads;
  const half = d / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h += 1) {
    for (let i = 0; i < half; i += 1) {
      for (let j = 0; j < 2; j += 1) {
        const from = h * d + j * half + i;
        const to = h * d + 2 * i + j;
        out.set(values.subarray(from * cols, from * cols + cols), to * cols);
      }
    }
  }
  return out;
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r += 1) for (let c = 0; c < cols; c += 1) out[c * rows + r] = values[r * cols + c] ?? 0;
  return out;
}

/** HF -> GGUF names of one decoder layer's tensors for `arch`. */
function layerPlan(config: ModelConfig, arch: GgufArch, n: number, has: (name: string) => boolean, prefix: string): PlannedTensor[] {
  const none: RowTransform = { kind: 'none' };
  const out: PlannedTensor[] = [];
  const add = (g: string, hf: string, transform: RowTransform = none, optional = false): void => {
    if (optional && !has(hf)) return;
    out.push({ gguf: `blk.${n}.${g}`, hf, transform });
  };
  if (arch === 'gpt2') {
    const p = `${prefix}h.${n}`;
    const t: RowTransform = { kind: 'transpose' };
    for (const s of ['weight', 'bias']) {
      add(`attn_norm.${s}`, `${p}.ln_1.${s}`);
      add(`attn_qkv.${s}`, `${p}.attn.c_attn.${s}`, s === 'weight' ? t : none);
      add(`attn_output.${s}`, `${p}.attn.c_proj.${s}`, s === 'weight' ? t : none);
      add(`ffn_norm.${s}`, `${p}.ln_2.${s}`);
      add(`ffn_up.${s}`, `${p}.mlp.c_fc.${s}`, s === 'weight' ? t : none);
      add(`ffn_down.${s}`, `${p}.mlp.c_proj.${s}`, s === 'weight' ? t : none);
    }
    return out;
  }
  const p = `model.layers.${n}`;
  add('attn_norm.weight', `${p}.input_layernorm.weight`);
  add('ffn_norm.weight', `${p}.post_attention_layernorm.weight`);
  add('attn_output.weight', `${p}.self_attn.o_proj.weight`);
  add('attn_output.bias', `${p}.self_attn.o_proj.bias`, none, true);
  add('ffn_down.weight', `${p}.mlp.down_proj.weight`);
  if (arch === 'phi3') {
    add('attn_qkv.weight', `${p}.self_attn.qkv_proj.weight`);
    add('ffn_up.weight', `${p}.mlp.gate_up_proj.weight`);
    return out;
  }
  const q: RowTransform = arch === 'llama' ? { kind: 'permute', heads: config.numHeads } : none;
  const k: RowTransform = arch === 'llama' ? { kind: 'permute', heads: config.numKvHeads } : none;
  add('attn_q.weight', `${p}.self_attn.q_proj.weight`, q);
  add('attn_k.weight', `${p}.self_attn.k_proj.weight`, k);
  add('attn_v.weight', `${p}.self_attn.v_proj.weight`);
  add('attn_q.bias', `${p}.self_attn.q_proj.bias`, q, true);
  add('attn_k.bias', `${p}.self_attn.k_proj.bias`, k, true);
  add('attn_v.bias', `${p}.self_attn.v_proj.bias`, none, true);
  add('ffn_gate.weight', `${p}.mlp.gate_proj.weight`);
  add('ffn_up.weight', `${p}.mlp.up_proj.weight`);
  return out;
}

/** Every tensor of the file, in llama.cpp's order (embeddings, layers, output). */
export function tensorPlan(config: ModelConfig, has: (name: string) => boolean, file: string): PlannedTensor[] {
  const arch = ggufArch(config);
  const none: RowTransform = { kind: 'none' };
  const plan: PlannedTensor[] = [];
  if (config.mlpBias && arch !== 'gpt2') throw new UnsupportedError({ what: 'mlp_bias (llama.cpp has no MLP biases for this architecture)', got: true, where: `${file}: mlp_bias` });
  if (arch === 'gpt2') {
    const prefix = has('transformer.wte.weight') ? 'transformer.' : '';
    plan.push({ gguf: 'token_embd.weight', hf: `${prefix}wte.weight`, transform: none });
    plan.push({ gguf: 'position_embd.weight', hf: `${prefix}wpe.weight`, transform: none });
    for (let n = 0; n < config.numLayers; n += 1) plan.push(...layerPlan(config, arch, n, has, prefix));
    plan.push({ gguf: 'output_norm.weight', hf: `${prefix}ln_f.weight`, transform: none });
    plan.push({ gguf: 'output_norm.bias', hf: `${prefix}ln_f.bias`, transform: none });
    plan.push({ gguf: 'output.weight', hf: config.tieWordEmbeddings || !has('lm_head.weight') ? `${prefix}wte.weight` : 'lm_head.weight', transform: none });
  } else {
    plan.push({ gguf: 'token_embd.weight', hf: 'model.embed_tokens.weight', transform: none });
    for (let n = 0; n < config.numLayers; n += 1) plan.push(...layerPlan(config, arch, n, has, ''));
    plan.push({ gguf: 'output_norm.weight', hf: 'model.norm.weight', transform: none });
    // llama and qwen2 fall back to token_embd when output.weight is absent; phi3 needs it.
    if (!config.tieWordEmbeddings) plan.push({ gguf: 'output.weight', hf: 'lm_head.weight', transform: none });
    else if (arch === 'phi3') plan.push({ gguf: 'output.weight', hf: 'model.embed_tokens.weight', transform: none });
  }
  for (const t of plan) if (!has(t.hf)) throw new FormatError({ file, field: t.hf, expected: `a tensor of the ${config.className} checkpoint (for ${t.gguf})`, got: 'no such tensor' });
  return plan;
}

/** The general.* and <arch>.* keys; returns warnings for what llama.cpp treats differently. */
export function modelMetadata(config: ModelConfig, type: GgufOutType, name: string, md: GgufMetadata, file: string): string[] {
  const arch = ggufArch(config);
  const warnings: string[] = [];
  md.set('general.architecture', gguf.str(arch));
  md.set('general.type', gguf.str('model'));
  md.set('general.name', gguf.str(name));
  md.set('general.file_type', gguf.u32(FILE_TYPE[type]));
  if (type === 'q8_0') md.set('general.quantization_version', gguf.u32(2));
  let context = config.maxPositions;
  if (config.slidingWindow !== null && config.slidingWindow < context && arch !== 'phi3') {
    // llama.cpp attends over the whole context for these architectures; within the window
    // that is the same computation, so the file declares the window as its context.
    warnings.push(`the model uses sliding-window attention (${config.slidingWindow} tokens), which llama.cpp's ${arch} architecture does not: context_length is set to ${config.slidingWindow}`);
    context = config.slidingWindow;
  }
  md.set(`${arch}.context_length`, gguf.u32(context));
  md.set(`${arch}.embedding_length`, gguf.u32(config.hiddenSize));
  md.set(`${arch}.block_count`, gguf.u32(config.numLayers));
  md.set(`${arch}.feed_forward_length`, gguf.u32(config.intermediateSize));
  md.set(`${arch}.attention.head_count`, gguf.u32(config.numHeads));
  if (arch === 'gpt2') {
    md.set(`${arch}.attention.layer_norm_epsilon`, gguf.f32(config.normEps));
    return warnings;
  }
  md.set(`${arch}.attention.head_count_kv`, gguf.u32(config.numKvHeads));
  md.set(`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.normEps));
  if (config.headDim * config.numHeads !== config.hiddenSize || arch === 'llama') {
    md.set(`${arch}.attention.key_length`, gguf.u32(config.headDim));
    md.set(`${arch}.attention.value_length`, gguf.u32(config.headDim));
  }
  if (arch === 'phi3' && config.slidingWindow !== null) md.set(`${arch}.attention.sliding_window`, gguf.u32(config.slidingWindow));
  md.set(`${arch}.vocab_size`, gguf.u32(config.vocabSize));
  const rope = config.rope;
  if (!rope) throw new FormatError({ file, field: 'rope_theta', expected: 'rotary embeddings for this architecture', got: 'none' });
  md.set(`${arch}.rope.freq_base`, gguf.f32(rope.theta));
  md.set(`${arch}.rope.dimension_count`, gguf.u32(Math.round(config.headDim * rope.partialRotaryFactor)));
  if (rope.type === 'linear') {
    md.set(`${arch}.rope.scaling.type`, gguf.str('linear'));
    md.set(`${arch}.rope.scaling.factor`, gguf.f32(rope.factor ?? 1));
  } else if (rope.type !== 'default') {
    throw new UnsupportedError({ what: 'rope scaling for GGUF export', got: rope.type, supported: ['default', 'linear'], where: `${file}: rope_scaling` });
  }
  return warnings;
}

/** The tensor's GGUF type: 1-D tensors stay f32; q8_0 needs rows of a multiple of 32 (else f16). */
export function tensorType(shape: readonly number[], type: GgufOutType): GgmlTypeName {
  if (shape.length < 2) return 'F32';
  if (type === 'q8_0' && (shape.at(-1) ?? 0) % 32 !== 0) return 'F16';
  return GGML_OF[type];
}

/** Lazy GGUF tensor sources reading from the checkpoint. */
export function tensorSources(ckpt: Checkpoint, plan: readonly PlannedTensor[], type: GgufOutType): GgufTensorSource[] {
  return plan.map((t) => {
    const hfShape = ckpt.info(t.hf).shape;
    const shape = t.transform.kind === 'transpose' ? [hfShape[1] ?? 1, hfShape[0] ?? 1] : [...hfShape];
    const ggmlType = tensorType(shape, type);
    return {
      name: t.gguf,
      shape,
      type: ggmlType,
      data: async () => {
        let values = await ckpt.readF32(t.hf);
        if (t.transform.kind === 'permute') values = permuteRows(values, hfShape[0] ?? 1, t.transform.heads);
        else if (t.transform.kind === 'transpose') values = transpose(values, hfShape[0] ?? 1, hfShape[1] ?? 1);
        return encodeTensor(values, ggmlType, shape.at(-1) ?? 1);
      },
    };
  });
}
