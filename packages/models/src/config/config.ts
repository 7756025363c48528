// Reads a Hugging Face `config.json` into one normalised ModelConfig for the five supported
// families, accepting both transformers-4 (`rope_theta`, `rope_scaling`) and transformers-5
// (`rope_parameters`) layouts. Anything we cannot run fails here, naming the field.
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import type { FileTree } from '@peft-ts/safetensors';

export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'phi3' | 'gpt2';

/** model_type values we run, and the architectures class names that go with them. */
export const SUPPORTED_MODEL_TYPES: Record<Architecture, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  phi3: 'Phi3ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

export type RopeType = 'default' | 'linear' | 'dynamic' | 'llama3' | 'yarn' | 'longrope';
export const SUPPORTED_ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'];

export interface RopeConfig {
  type: RopeType;
  theta: number;
  /** Fraction of each head's dims that rotate (Phi-3 style); 1 = all. */
  partialRotaryFactor: number;
  /** linear / dynamic / yarn / llama3 scaling factor. */
  factor?: number;
  originalMaxPositions?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  attentionFactor?: number;
  shortFactor?: number[];
  longFactor?: number[];
}

export type Activation = 'silu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh';

export interface ModelConfig {
  arch: Architecture;
  /** The architectures[0] class name from the file, or the default for the model_type. */
  className: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositions: number;
  /** RMSNorm eps (Llama family) or LayerNorm eps (GPT-2). */
  normEps: number;
  norm: 'rms' | 'layer';
  activation: Activation;
  /** Learned absolute positions (GPT-2) instead of rotary. */
  rope: RopeConfig | null;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v (Qwen2, Llama attention_bias, GPT-2). */
  qkvBias: boolean;
  /** Bias on the attention output projection (Llama attention_bias, GPT-2). */
  oBias: boolean;
  mlpBias: boolean;
  /** Sliding-window attention size (Mistral, Qwen2 with use_sliding_window), or null. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** dtype the checkpoint was saved in, as written in config (torch_dtype / dtype), if any. */
  dtype: string | null;
  /** The parsed JSON, for fields we pass through (e.g. quantization_config). */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

class Reader {
  constructor(
    readonly file: string,
    readonly json: Json,
  ) {}

  private fail(field: string, expected: string, got: unknown): never {
    throw new FormatError({ file: this.file, field, expected, got: typeof got === 'string' ? JSON.stringify(got) : got });
  }

  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  int(field: string, fallback?: number, obj: Json = this.json, prefix = ''): number {
    const v = obj[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return this.fail(prefix + field, 'a positive integer', v);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return this.fail(prefix + field, 'a non-negative integer', v);
    return v;
  }

  num(field: string, fallback?: number, obj: Json = this.json, prefix = ''): number {
    const v = obj[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return this.fail(prefix + field, 'a number', v);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(prefix + field, 'a finite number', v);
    return v;
  }

  optNum(field: string, obj: Json, prefix: string): number | undefined {
    return obj[field] === undefined || obj[field] === null ? undefined : this.num(field, undefined, obj, prefix);
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') return this.fail(field, 'true or false', v);
    return v;
  }

  optId(field: string): number | null {
    const v = this.json[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.fail(field, 'a token id (integer) or null', v);
    return v;
  }

  ids(field: string): number[] {
    const v = this.json[field];
    if (v === undefined || v === null) return [];
    if (typeof v === 'number' && Number.isInteger(v)) return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v as number[];
    return this.fail(field, 'a token id, a list of token ids, or null', v);
  }

  numList(field: string, obj: Json, prefix: string): number[] | undefined {
    const v = obj[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v;
    return this.fail(prefix + field, 'a list of numbers', v);
  }
}

function parseRope(r: Reader, arch: Architecture, maxPositions: number): RopeConfig {
  const json = r.json;
  // transformers 5: rope_parameters {rope_theta, rope_type, ...}; transformers 4: rope_theta + rope_scaling.
  const paramsRaw = json.rope_parameters ?? json.rope_scaling;
  let params: Json = {};
  let prefix = '';
  if (paramsRaw !== undefined && paramsRaw !== null) {
    if (typeof paramsRaw !== 'object' || Array.isArray(paramsRaw)) {
      throw new FormatError({ file: r.file, field: json.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling', expected: 'an object', got: paramsRaw });
    }
    params = paramsRaw as Json;
    prefix = json.rope_parameters !== undefined ? 'rope_parameters.' : 'rope_scaling.';
  }
  const defaultTheta = arch === 'qwen2' ? 1_000_000 : 10_000;
  const theta = params.rope_theta !== undefined ? r.num('rope_theta', undefined, params, prefix) : r.num('rope_theta', defaultTheta);
  const typeRaw = params.rope_type ?? params.type ?? 'default';
  if (typeof typeRaw !== 'string') throw new FormatError({ file: r.file, field: `${prefix}rope_type`, expected: 'a string', got: typeRaw });
  const type = (typeRaw === 'su' ? 'longrope' : typeRaw) as RopeType;
  if (!SUPPORTED_ROPE_TYPES.includes(type)) {
    throw new UnsupportedError({ what: 'rope type', got: typeRaw, supported: SUPPORTED_ROPE_TYPES, where: `${r.file}: ${prefix}rope_type` });
  }
  const partial = params.partial_rotary_factor !== undefined ? r.num('partial_rotary_factor', undefined, params, prefix) : r.num('partial_rotary_factor', 1);
  const rope: RopeConfig = { type, theta, partialRotaryFactor: partial };
  const set = <K extends keyof RopeConfig>(key: K, value: RopeConfig[K] | undefined) => {
    if (value !== undefined) rope[key] = value;
  };
  set('factor', r.optNum('factor', params, prefix));
  const original = r.optNum('original_max_position_embeddings', params, prefix) ?? (r.has('original_max_position_embeddings') ? r.int('original_max_position_embeddings') : undefined);
  set('originalMaxPositions', original);
  set('lowFreqFactor', r.optNum('low_freq_factor', params, prefix));
  set('highFreqFactor', r.optNum('high_freq_factor', params, prefix));
  set('betaFast', r.optNum('beta_fast', params, prefix));
  set('betaSlow', r.optNum('beta_slow', params, prefix));
  set('mscale', r.optNum('mscale', params, prefix));
  set('mscaleAllDim', r.optNum('mscale_all_dim', params, prefix));
  set('attentionFactor', r.optNum('attention_factor', params, prefix));
  set('shortFactor', r.numList('short_factor', params, prefix));
  set('longFactor', r.numList('long_factor', params, prefix));
  const needsFactor: RopeType[] = ['linear', 'dynamic', 'llama3', 'yarn'];
  if (needsFactor.includes(type) && rope.factor === undefined) {
    throw new FormatError({ file: r.file, field: `${prefix}factor`, expected: `a scaling factor for rope type "${type}"`, got: undefined });
  }
  if (type === 'llama3' && (rope.lowFreqFactor === undefined || rope.highFreqFactor === undefined || rope.originalMaxPositions === undefined)) {
    throw new FormatError({ file: r.file, field: prefix || 'rope_scaling', expected: 'low_freq_factor, high_freq_factor and original_max_position_embeddings for llama3', got: params });
  }
  if (type === 'longrope' && (!rope.shortFactor || !rope.longFactor)) {
    throw new FormatError({ file: r.file, field: prefix || 'rope_scaling', expected: 'short_factor and long_factor lists for longrope', got: params });
  }
  if (rope.originalMaxPositions === undefined && (type === 'yarn' || type === 'dynamic' || type === 'longrope')) rope.originalMaxPositions = maxPositions;
  return rope;
}

/** Normalises a parsed config.json. `file` names the source in errors. */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new FormatError({ file, field: '(root)', expected: 'a JSON object', got: json });
  const r = new Reader(file, json as Json);
  const modelType = (json as Json).model_type;
  const supported = Object.keys(SUPPORTED_MODEL_TYPES);
  if (typeof modelType !== 'string') throw new FormatError({ file, field: 'model_type', expected: `one of ${supported.join(', ')}`, got: modelType });
  if (!(modelType in SUPPORTED_MODEL_TYPES)) {
    throw new UnsupportedError({ what: 'model_type', got: modelType, supported, where: file });
  }
  const arch = modelType as Architecture;
  const archs = (json as Json).architectures;
  let className = SUPPORTED_MODEL_TYPES[arch];
  if (Array.isArray(archs) && typeof archs[0] === 'string') {
    className = archs[0];
    const known = Object.values(SUPPORTED_MODEL_TYPES);
    if (!known.includes(className)) throw new UnsupportedError({ what: 'architecture', got: className, supported: known, where: `${file}: architectures` });
  }
  const dtypeRaw = (json as Json).dtype ?? (json as Json).torch_dtype;
  const common = {
    arch,
    className,
    bosTokenId: r.optId('bos_token_id'),
    eosTokenIds: r.ids('eos_token_id'),
    padTokenId: r.optId('pad_token_id'),
    dtype: typeof dtypeRaw === 'string' ? dtypeRaw : null,
    raw: json as Json,
  };
  if (arch === 'gpt2') {
    const hidden = r.int('n_embd');
    const heads = r.int('n_head');
    const act = (json as Json).activation_function ?? 'gelu_new';
    const acts: Activation[] = ['gelu_new', 'gelu', 'gelu_pytorch_tanh'];
    if (typeof act !== 'string' || !acts.includes(act as Activation)) {
      throw new UnsupportedError({ what: 'activation_function', got: act, supported: acts, where: file });
    }
    if (hidden % heads !== 0) throw new FormatError({ file, field: 'n_embd', expected: `a multiple of n_head (${heads})`, got: hidden });
    if (r.bool('scale_attn_by_inverse_layer_idx', false) || r.bool('reorder_and_upcast_attn', false) || !r.bool('scale_attn_weights', true)) {
      throw new UnsupportedError({ what: 'GPT-2 attention variant', got: 'scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn / scale_attn_weights=false', where: file });
    }
    return {
      ...common,
      vocabSize: r.int('vocab_size'),
      hiddenSize: hidden,
      intermediateSize: r.int('n_inner', 4 * hidden),
      numLayers: r.int('n_layer'),
      numHeads: heads,
      numKvHeads: heads,
      headDim: hidden / heads,
      maxPositions: r.int('n_positions'),
      normEps: r.num('layer_norm_epsilon', 1e-5),
      norm: 'layer',
      activation: act as Activation,
      rope: null,
      tieWordEmbeddings: r.bool('tie_word_embeddings', true),
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      slidingWindow: null,
    };
  }
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', heads);
  if (kvHeads === 0 || heads % kvHeads !== 0) throw new FormatError({ file, field: 'num_key_value_heads', expected: `a divisor of num_attention_heads (${heads})`, got: kvHeads });
  const headDim = r.int('head_dim', Math.floor(hidden / heads));
  const act = (json as Json).hidden_act ?? 'silu';
  if (act !== 'silu') throw new UnsupportedError({ what: 'hidden_act', got: act, supported: ['silu'], where: file });
  const maxPositions = r.int('max_position_embeddings');
  const rope = parseRope(r, arch, maxPositions);
  let slidingWindow: number | null = null;
  if (arch === 'mistral' || arch === 'phi3') slidingWindow = r.has('sliding_window') ? r.int('sliding_window') : null;
  if (arch === 'qwen2' && r.bool('use_sliding_window', false)) {
    slidingWindow = r.has('sliding_window') ? r.int('sliding_window') : null;
    const maxWindowLayers = r.int('max_window_layers', 0);
    if (slidingWindow !== null && maxWindowLayers < r.int('num_hidden_layers')) {
      throw new UnsupportedError({ what: 'Qwen2 per-layer sliding window', got: `max_window_layers ${maxWindowLayers}`, where: file });
    }
  }
  const attentionBias = r.bool('attention_bias', false);
  return {
    ...common,
    vocabSize: r.int('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: r.int('intermediate_size'),
    numLayers: r.int('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    maxPositions,
    normEps: r.num('rms_norm_eps', 1e-6),
    norm: 'rms',
    activation: 'silu',
    rope,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    qkvBias: arch === 'qwen2' ? true : attentionBias,
    oBias: arch === 'qwen2' ? false : attentionBias,
    mlpBias: arch === 'llama' ? r.bool('mlp_bias', false) : false,
    slidingWindow,
  };
}

/** Reads and parses `config.json` at the root of a model tree (a directory, picked files, memory). */
export async function loadModelConfigFrom(tree: FileTree): Promise<ModelConfig> {
  const file = `${tree.name}/config.json`;
  const source = await tree.open('config.json');
  if (!source) {
    throw new FormatError({ file, field: '(file)', expected: 'a readable config.json in the model directory', got: 'no such file' });
  }
  let text: string;
  try {
    const bytes = await source.read(0, source.size);
    text = new TextDecoder().decode(bytes);
  } finally {
    await source.close?.();
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file, field: '(json)', expected: 'valid JSON', got: (cause as Error).message, cause });
  }
  return parseModelConfig(json, file);
}
