// GPU memory arithmetic for full fine-tuning, LoRA and QLoRA: parameter counts from the layout,
// bytes for weights, gradients, optimizer state and activations. Used by `peft-ts estimate`.
import { UnsupportedError } from '@peft-ts/errors';
import { parseModelConfig, type ModelConfig } from '../config/config.js';
import { modelLayout, type LinearLayout } from '../config/layout.js';
import { traceTrainingStep } from './step-trace.js';

export type FinetuneMethod = 'full' | 'lora' | 'qlora';
export type OptimizerKind = 'adamw' | 'adamw8bit' | 'paged_adamw' | 'paged_adamw8bit' | 'sgd';

export interface EstimateOptions {
  method: FinetuneMethod;
  /** LoRA rank (default 16). */
  r?: number;
  /**
   * LoRA dropout probability (default 0, PEFT's default). Above 0 every adapter keeps a dropped-out
   * copy of its input for the step; `peft-ts train` uses 0.05 unless told otherwise.
   */
  loraDropout?: number;
  /** Target module short names, or 'all-linear' (default: q_proj and v_proj, PEFT's Llama default; c_attn for GPT-2). */
  targets?: readonly string[] | 'all-linear';
  batch?: number;
  seqLen?: number;
  /** Per-layer gradient checkpointing (default true). */
  checkpointing?: boolean;
  optimizer?: OptimizerKind;
  /** Storage of frozen 16-bit weights and of full fine-tuning weights (default 'bf16'). */
  weightDtype?: 'f32' | 'f16' | 'bf16';
  /** Activation dtype (default 'f32'; 'f16' where the device has shader-f16). */
  activationDtype?: 'f32' | 'f16';
  /**
   * How a 4-bit linear multiplies: 'whole-layer' (default, what a software adapter does) decodes the
   * whole weight to f32 for the product; 'tiles' decodes tile by tile in workgroup memory (GPUs).
   */
  decode4bit?: 'whole-layer' | 'tiles';
  /** NF4 block size and double quantization for QLoRA (defaults 64 and true). */
  blocksize?: number;
  doubleQuant?: boolean;
}

export interface ParameterCount {
  total: number;
  /** Parameters inside linear layers (4-bit in QLoRA). */
  linear: number;
  /** Embeddings, norms, biases, positions, and an untied lm_head. */
  other: number;
  trainable: number;
}

export interface MemoryEstimate {
  method: FinetuneMethod;
  params: ParameterCount;
  bytes: { weights: number; gradients: number; optimizer: number; activations: number; total: number };
  /** How each figure was reached, one line each. */
  notes: string[];
}

const DTYPE_BYTES = { f32: 4, f16: 2, bf16: 2 } as const;

/** Bytes of one NF4 weight of n elements: packed nibbles + absmax (u8 with double quant, f32 without). */
export function nf4Bytes(n: number, blocksize = 64, doubleQuant = true): number {
  const blocks = Math.ceil(n / blocksize);
  const packed = Math.ceil(n / 2);
  if (!doubleQuant) return packed + 4 * blocks + 64;
  return packed + blocks + 4 * Math.ceil(blocks / 256) + 64 + 1024 + 4;
}

export function countParameters(config: ModelConfig): ParameterCount {
  const layout = modelLayout(config);
  let linear = 0;
  for (const l of layout.linears) linear += l.inFeatures * l.outFeatures;
  let other = 0;
  for (const t of layout.others) other += t.shape.reduce((a, b) => a * b, 1);
  if (layout.lmHead) other += layout.lmHead.inFeatures * layout.lmHead.outFeatures;
  return { total: linear + other, linear, other, trainable: 0 };
}

/** The linear layers a target spec selects (PEFT semantics: short-name match, or every linear but the head). */
export function selectTargets(config: ModelConfig, targets: readonly string[] | 'all-linear' | undefined): LinearLayout[] {
  const layout = modelLayout(config);
  const spec = targets ?? (config.arch === 'gpt2' ? ['c_attn'] : config.arch === 'phi3' ? ['qkv_proj'] : ['q_proj', 'v_proj']);
  if (spec === 'all-linear') return layout.linears;
  const chosen = layout.linears.filter((l) => spec.includes(l.short));
  const unknown = spec.filter((s) => !layout.linears.some((l) => l.short === s));
  if (unknown.length > 0) {
    const names = [...new Set(layout.linears.map((l) => l.short))];
    throw new UnsupportedError({ what: 'target module', got: unknown.join(', '), supported: names, where: `${config.arch} model` });
  }
  return chosen;
}

function optimizerBytesPerParam(opt: OptimizerKind): number {
  switch (opt) {
    case 'sgd':
      return 4;
    case 'adamw8bit':
    case 'paged_adamw8bit':
      return 2;
    default:
      return 8;
  }
}

/** Bytes in decimal units (kB = 10^3, MB = 10^6, GB = 10^9), scaled so that small sizes do not read 0.00 GB. */
export function formatDecimalBytes(bytes: number): string {
  for (const [unit, scale] of [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const) {
    if (Math.abs(bytes) >= scale) return `${(bytes / scale).toFixed(2)} ${unit}`;
  }
  return `${bytes} B`;
}

export function estimateMemory(config: ModelConfig, options: EstimateOptions): MemoryEstimate {
  const notes: string[] = [];
  const params = countParameters(config);
  const r = options.r ?? 16;
  const batch = options.batch ?? 1;
  const seqLen = options.seqLen ?? 512;
  const checkpointing = options.checkpointing ?? true;
  const optimizer = options.optimizer ?? 'adamw';
  const wdt = options.weightDtype ?? 'bf16';
  const adt = options.activationDtype ?? 'f32';
  const gb = formatDecimalBytes;

  let weights: number;
  let gradients: number;
  let optimizerBytes: number;
  let trainable: number;
  if (options.method === 'full') {
    trainable = params.total;
    // Mixed precision as in the seeds' tables: 16-bit weights and gradients, fp32 master copy + m + v.
    weights = params.total * DTYPE_BYTES[wdt];
    gradients = params.total * DTYPE_BYTES[wdt];
    const perParam = wdt === 'f32' ? optimizerBytesPerParam(optimizer) : optimizerBytesPerParam(optimizer) + 4;
    optimizerBytes = params.total * perParam;
    notes.push(`${params.total.toLocaleString('en-US')} params x ${DTYPE_BYTES[wdt]} B weights + ${DTYPE_BYTES[wdt]} B grads + ${perParam} B optimizer (${optimizer}${wdt === 'f32' ? '' : ', with an fp32 master copy'})`);
  } else {
    const targets = selectTargets(config, options.targets);
    trainable = targets.reduce((s, l) => s + r * (l.inFeatures + l.outFeatures), 0);
    if (options.method === 'qlora') {
      const bs = options.blocksize ?? 64;
      const dq = options.doubleQuant ?? true;
      const layout = modelLayout(config);
      const quant = layout.linears.reduce((s, l) => s + nf4Bytes(l.inFeatures * l.outFeatures, bs, dq), 0);
      weights = quant + params.other * DTYPE_BYTES[wdt];
      notes.push(`weights: ${params.linear.toLocaleString('en-US')} linear params in NF4 (${((quant * 8) / params.linear).toFixed(3)} bits/param with blocksize ${bs}${dq ? ', double quant' : ''}) = ${gb(quant)}, plus ${params.other.toLocaleString('en-US')} others in ${wdt} = ${gb(params.other * DTYPE_BYTES[wdt])}`);
    } else {
      weights = params.total * DTYPE_BYTES[wdt];
      notes.push(`weights: ${params.total.toLocaleString('en-US')} params in ${wdt} = ${gb(weights)}`);
    }
    // The adapter's own A and B matrices, f32, sit beside the frozen weights.
    weights += trainable * 4;
    gradients = trainable * 4;
    optimizerBytes = trainable * optimizerBytesPerParam(optimizer);
    notes.push(`LoRA r=${r} on ${targets.length} linears: ${trainable.toLocaleString('en-US')} trainable params, f32 weights ${gb(trainable * 4)} (in weights), f32 grads ${gb(gradients)}, ${optimizer} state ${gb(optimizerBytes)}`);
  }
  params.trainable = trainable;

  // The step itself, replayed on sizes: what the forward creates lives until the step ends (the
  // trainer's step scope frees it then; a checkpointed layer keeps only its output), the backward
  // walk adds gradients, temporaries and recomputed layers on top, and the replay's peak is what
  // a step adds to the weights and optimizer state.
  const tokens = batch * seqLen;
  const loraRank = new Map<string, number>();
  const targetLayers = options.method === 'full' ? [] : selectTargets(config, options.targets);
  for (const l of targetLayers) loraRank.set(l.short, r);
  const loraTargets = targetLayers.length;
  const step = traceTrainingStep(config, {
    batch,
    seqLen,
    loraRank,
    quantized: options.method === 'qlora',
    decode4bit: options.decode4bit ?? 'whole-layer',
    checkpointing,
    activationDtype: adt,
    trainBase: options.method === 'full',
    loraDropout: options.method === 'full' ? 0 : (options.loraDropout ?? 0),
  });
  // Rotary cos/sin tables, f32, one row per position up to the longer of the context and the sequence.
  const rotaryDim = config.rope ? Math.floor(config.headDim * config.rope.partialRotaryFactor) : 0;
  const positionTables = config.rope ? 2 * Math.max(config.maxPositions, seqLen) * rotaryDim * 4 : 0;
  // Small tables the runtime keeps: the 4-bit code tables (288 f32) and the optimizer's work-item
  // table (16 u32 words per parameter tensor, room for 4 at least).
  const codeTables = options.method === 'qlora' ? 288 * 4 : 0;
  const paramTensors = options.method === 'full' ? modelLayout(config).linears.length : 2 * loraTargets;
  const workItems = Math.max(4, paramTensors) * 16 * 4;
  const tables = positionTables + codeTables + workItems;
  const at = step.atPeak;
  const activations = step.peak - at.grads + tables;
  notes.push(
    `activations: batch ${batch} x seq ${seqLen} (${tokens.toLocaleString('en-US')} tokens), ${adt} between layers, ${checkpointing ? 'gradient checkpointing' : 'no checkpointing'}; at the step's peak:`,
  );
  notes.push(
    `  forward, held to the end of the step: ${gb(at.forward)} (${checkpointing ? "each layer's input, kept for its recomputation" : "every layer's tensors"}, the final norm, logits ${gb(step.logits)} in f32 over the ${config.vocabSize.toLocaleString('en-US')}-token vocabulary, the loss's buffers)`,
  );
  if (checkpointing) notes.push(`  one layer recomputed in backward: ${gb(at.recomputed)}`);
  notes.push(`  backward: gradients of activations and temporaries ${gb(at.backward)} (at the head, the logits' gradient: ${gb(step.logits)})`);
  if (step.decodeTemp > 0) notes.push(`  a 4-bit weight decoded whole to f32 for one product: ${gb(at.decode)} (the largest ${gb(step.decodeTemp)}; decoding by tiles on a GPU needs none)`);
  notes.push(
    `  tables: rotary ${gb(positionTables)}, optimizer work items ${gb(workItems)}${codeTables > 0 ? `, 4-bit codes ${gb(codeTables)}` : ''}; parameter gradients live then ${gb(at.grads)} (all of them are under gradients)`,
  );
  notes.push(
    `the figures are bytes the runtime accounts (tensors' logical sizes); the device holds more: the buffer pool rounds each buffer up to its size class (at most 25%), ${gb(step.poolSlack)} over the step's buffers at the peak, and keeps freed buffers for reuse`,
  );
  const total = weights + gradients + optimizerBytes + activations;
  return { method: options.method, params, bytes: { weights, gradients, optimizer: optimizerBytes, activations, total }, notes };
}

/** Configs of well-known sizes, for estimates without a model directory. */
export const NAMED_SIZES: Record<string, Record<string, unknown>> = {
  gpt2: { model_type: 'gpt2', vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024 },
  'qwen2.5-0.5b': { model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rope_theta: 1000000, tie_word_embeddings: true },
  'tinyllama-1.1b': { model_type: 'llama', vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048 },
  'phi-3-mini': { model_type: 'phi3', vocab_size: 32064, hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096 },
  '7b': { model_type: 'llama', vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096 },
  'mistral-7b': { model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 32768, sliding_window: 4096 },
  '8b': { model_type: 'llama', vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 8192, rope_theta: 500000 },
  '13b': { model_type: 'llama', vocab_size: 32000, hidden_size: 5120, intermediate_size: 13824, num_hidden_layers: 40, num_attention_heads: 40, num_key_value_heads: 40, max_position_embeddings: 4096 },
  '70b': { model_type: 'llama', vocab_size: 32000, hidden_size: 8192, intermediate_size: 28672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, max_position_embeddings: 4096 },
};

export function namedConfig(name: string): ModelConfig {
  const json = NAMED_SIZES[name.toLowerCase()];
  if (!json) throw new UnsupportedError({ what: 'model size name', got: name, supported: Object.keys(NAMED_SIZES) });
  return parseModelConfig(json, `named size "${name}"`);
}
