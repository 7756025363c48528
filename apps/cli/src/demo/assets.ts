// The demo's base model, made on the spot: a tiny Llama with seeded random weights and a
// byte-level BPE tokenizer trained on the shipped example dataset, identical byte for byte on
// every run and machine, so the demo needs no download and its numbers can be reproduced.
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ALPACA_PROMPT_INPUT,
  ALPACA_PROMPT_NO_INPUT,
  exampleDatasetPath,
  loadDataset,
  renderExample,
  type Example,
} from '@peft-ts/data-alpaca/node';
import { PeftError } from '@peft-ts/errors';
import { writeDirAtomically, writeSafetensors, type TensorSource } from '@peft-ts/safetensors/node';
import { tokenizerFiles, tokenizerVocabSize, trainByteLevelBpe } from './bpe.js';

/** Bump whenever anything that shapes the assets changes, so old directories are rebuilt. */
export const DEMO_ASSETS_VERSION = 1;
/** The file in a demo directory that records what made it and each file's SHA-256. */
export const DEMO_STAMP_FILE = 'peft-ts-demo.json';

export const DEMO_EOS_TOKEN = '<|endoftext|>';
export const DEMO_PAD_TOKEN = '<|pad|>';
/** Special tokens at ids 0 and 1; EOS doubles as BOS, as in GPT-2. */
export const DEMO_SPECIAL_TOKENS: readonly string[] = [DEMO_EOS_TOKEN, DEMO_PAD_TOKEN];
/**
 * Big enough that every word of the dataset's prompts is one or two tokens (the longest
 * rendered record stays well under 128 tokens), small enough that the output layer is cheap.
 */
export const DEMO_VOCAB_SIZE = 1024;

/** The model's dimensions: about 230 thousand parameters, under 1 MB in float32, so a software
 * Vulkan driver trains it at a step or two per second. */
export const DEMO_MODEL_SHAPE = {
  hidden_size: 64,
  intermediate_size: 192,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 256,
} as const;

/** Standard deviation of the normal initialisation, transformers' initializer_range. */
export const DEMO_INIT_STD = 0.02;

/** The config.json written for the demo model. */
export interface DemoModelConfig {
  architectures: ['LlamaForCausalLM'];
  attention_bias: false;
  attention_dropout: number;
  bos_token_id: number;
  dtype: 'float32';
  eos_token_id: number;
  head_dim: number;
  hidden_act: 'silu';
  hidden_size: number;
  initializer_range: number;
  intermediate_size: number;
  max_position_embeddings: number;
  mlp_bias: false;
  model_type: 'llama';
  num_attention_heads: number;
  num_hidden_layers: number;
  num_key_value_heads: number;
  pad_token_id: number;
  pretraining_tp: number;
  rms_norm_eps: number;
  rope_parameters: { rope_theta: number; rope_type: 'default' };
  tie_word_embeddings: false;
  use_cache: boolean;
  vocab_size: number;
}

export interface DemoAssetOptions {
  /** Seed of the weight initialisation (the tokenizer does not depend on it); default 0. */
  seed?: number;
  /** The Alpaca dataset the tokenizer learns from; default the example dataset of @peft-ts/data-alpaca. */
  datasetPath?: string;
}

export interface DemoAssets {
  /** Absolute path of the model directory. */
  dir: string;
  config: DemoModelConfig;
  vocabSize: number;
  /** True when `dir` already held these exact assets and nothing was written. */
  reused: boolean;
}

interface Stamp {
  generator: string;
  version: number;
  seed: number;
  inputs: string;
  files: Record<string, string>;
}

const GENERATOR = 'peft-ts demo assets';

// ---- deterministic random numbers ----------------------------------------------------------

// splitmix32's finalizer: nearby inputs (seed 0 vs 1) give unrelated states.
function mix32(value: number): number {
  let z = (value + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

// FNV-1a over UTF-16 code units: a tensor name as a 32-bit stream id.
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Uniform numbers in [0, 1), multiples of 2^-32, from mulberry32 seeded by (seed, stream). Each
 * tensor has its own stream, so its values do not depend on the order tensors are made in.
 */
export function seededUniform(seed: number, stream: string): () => number {
  let state = mix32((mix32(seed >>> 0) ^ fnv1a(stream)) >>> 0);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Natural log of x in (0, 1] from + - * / only. Math.log and Math.cos are not required to be
 * correctly rounded and engines have changed their implementations, so weights made with them
 * could differ in the last bit between Node versions; IEEE basic operations cannot.
 */
export function portableLog(x: number): number {
  if (!(x > 0 && x <= 1)) throw new PeftError('BAD_ARGUMENT', `portableLog: expected x in (0, 1], got ${x}`);
  let m = x;
  let e = 0;
  // Scaling by powers of two is exact: m ends in [sqrt(1/2), sqrt(2)).
  while (m < Math.SQRT1_2) {
    m *= 2;
    e -= 1;
  }
  // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), |s| <= 0.1716, so 14 terms reach 1e-17.
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  let term = s;
  let sum = 0;
  for (let k = 1; k <= 27; k += 2) {
    sum += term / k;
    term *= s2;
  }
  return 2 * sum + e * Math.LN2;
}

/** Standard normal samples by Marsaglia's polar method on a uniform source. */
export function normalSampler(uniform: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    for (;;) {
      const u = 2 * uniform() - 1;
      const v = 2 * uniform() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const scale = Math.sqrt((-2 * portableLog(s)) / s);
        spare = v * scale;
        return u * scale;
      }
    }
  };
}

// ---- the model ----------------------------------------------------------------------------

/** config.json for a vocabulary of `vocabSize` with the demo's special token ids. */
export function demoModelConfig(vocabSize: number, ids: { eos: number; pad: number }): DemoModelConfig {
  const s = DEMO_MODEL_SHAPE;
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0,
    bos_token_id: ids.eos,
    dtype: 'float32',
    eos_token_id: ids.eos,
    head_dim: s.head_dim,
    hidden_act: 'silu',
    hidden_size: s.hidden_size,
    initializer_range: DEMO_INIT_STD,
    intermediate_size: s.intermediate_size,
    max_position_embeddings: s.max_position_embeddings,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: s.num_attention_heads,
    num_hidden_layers: s.num_hidden_layers,
    num_key_value_heads: s.num_key_value_heads,
    pad_token_id: ids.pad,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_parameters: { rope_theta: 10000, rope_type: 'default' },
    tie_word_embeddings: false,
    use_cache: true,
    vocab_size: vocabSize,
  };
}

/** Names and [out, in] shapes of LlamaForCausalLM's state dict, in its order. */
export function demoTensorShapes(config: DemoModelConfig): { name: string; shape: number[] }[] {
  const h = config.hidden_size;
  const q = config.num_attention_heads * config.head_dim;
  const kv = config.num_key_value_heads * config.head_dim;
  const ff = config.intermediate_size;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [config.vocab_size, h] }];
  for (let i = 0; i < config.num_hidden_layers; i += 1) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}self_attn.q_proj.weight`, shape: [q, h] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, h] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, h] },
      { name: `${p}self_attn.o_proj.weight`, shape: [h, q] },
      { name: `${p}mlp.gate_proj.weight`, shape: [ff, h] },
      { name: `${p}mlp.up_proj.weight`, shape: [ff, h] },
      { name: `${p}mlp.down_proj.weight`, shape: [h, ff] },
      { name: `${p}input_layernorm.weight`, shape: [h] },
      { name: `${p}post_attention_layernorm.weight`, shape: [h] },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [h] }, { name: 'lm_head.weight', shape: [config.vocab_size, h] });
  return out;
}

/**
 * One tensor's initial values, as transformers initialises LlamaForCausalLM: norms 1, every
 * other weight normal(0, initializer_range), and the embedding row of the pad token zero (the
 * embedding's padding_idx).
 */
export function demoTensorValues(config: DemoModelConfig, name: string, shape: readonly number[], seed: number): Float32Array {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  if (name.endsWith('norm.weight')) return values.fill(1);
  const normal = normalSampler(seededUniform(seed, name));
  for (let i = 0; i < values.length; i += 1) values[i] = normal() * config.initializer_range;
  if (name === 'model.embed_tokens.weight') values.fill(0, config.pad_token_id * config.hidden_size, (config.pad_token_id + 1) * config.hidden_size);
  return values;
}

// ---- the directory ------------------------------------------------------------------------

/** The texts the tokenizer learns from: every example rendered with the Alpaca prompt it is trained with. */
export function demoTokenizerTexts(examples: readonly Example[]): string[] {
  return examples.map((e) => renderExample(e, undefined, { template: 'alpaca', appendEos: false }).text);
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// Everything the assets are a function of, hashed: a different dataset or template rebuilds them.
function inputsHash(seed: number, dataset: Uint8Array): string {
  const recipe = JSON.stringify({
    generator: GENERATOR,
    version: DEMO_ASSETS_VERSION,
    seed,
    vocabSize: DEMO_VOCAB_SIZE,
    specials: DEMO_SPECIAL_TOKENS,
    shape: DEMO_MODEL_SHAPE,
    std: DEMO_INIT_STD,
    prompts: [ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT],
    dataset: sha256(dataset),
  });
  return sha256(recipe);
}

// The stamp of an earlier demo directory, or null when there is none that this code wrote.
async function readStamp(dir: string): Promise<Stamp | null> {
  let text: string;
  try {
    text = await readFile(join(dir, DEMO_STAMP_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const value = JSON.parse(text) as Partial<Stamp> | null;
    const ok =
      value !== null &&
      typeof value === 'object' &&
      value.generator === GENERATOR &&
      typeof value.version === 'number' &&
      typeof value.seed === 'number' &&
      typeof value.inputs === 'string' &&
      typeof value.files === 'object' &&
      value.files !== null;
    return ok ? (value as Stamp) : null;
  } catch {
    return null;
  }
}

async function filesMatch(dir: string, files: Record<string, string>): Promise<boolean> {
  const names = Object.keys(files);
  if (names.length === 0) return false;
  for (const name of names) {
    try {
      if (sha256(await readFile(join(dir, name))) !== files[name]) return false;
    } catch {
      return false;
    }
  }
  return true;
}

// Besides a directory with a valid stamp (an earlier demo directory), only a missing or empty
// one may be replaced: the demo must never delete something a user put at that path.
async function checkReplaceable(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new PeftError('OUTPUT_EXISTS', `${dir}: exists and is not a directory; choose another path for the demo model`);
    }
    throw error;
  }
  if (entries.length > 0) {
    throw new PeftError(
      'OUTPUT_EXISTS',
      `${dir}: directory is not empty and has no valid ${DEMO_STAMP_FILE}, so it was not made by the demo (found ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); choose an empty or new path`,
    );
  }
}

/**
 * Writes the demo's base model directory: config.json, generation_config.json,
 * model.safetensors (float32), tokenizer.json, tokenizer_config.json, special_tokens_map.json
 * and the stamp. The directory is built beside `dir` and renamed into place. When `dir` already
 * holds the assets this version makes for `seed` and the dataset, with every file's hash
 * intact, it is reused; an earlier demo directory made otherwise is replaced; any other
 * non-empty directory is an OUTPUT_EXISTS error.
 */
export async function createDemoAssets(dir: string, options: DemoAssetOptions = {}): Promise<DemoAssets> {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new PeftError('BAD_OPTION', `createDemoAssets: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  const target = resolve(dir);
  const datasetPath = options.datasetPath ?? exampleDatasetPath();
  const inputs = inputsHash(seed, await readFile(datasetPath));

  const stamp = await readStamp(target);
  if (stamp !== null && stamp.inputs === inputs && stamp.version === DEMO_ASSETS_VERSION && stamp.seed === seed && (await filesMatch(target, stamp.files))) {
    const config = JSON.parse(await readFile(join(target, 'config.json'), 'utf8')) as DemoModelConfig;
    return { dir: target, config, vocabSize: config.vocab_size, reused: true };
  }
  if (stamp === null) await checkReplaceable(target);

  const dataset = await loadDataset(datasetPath);
  const tokenizer = trainByteLevelBpe(demoTokenizerTexts(dataset.examples), { vocabSize: DEMO_VOCAB_SIZE, specialTokens: DEMO_SPECIAL_TOKENS });
  const vocabSize = tokenizerVocabSize(tokenizer);
  const eos = tokenizer.model.vocab[DEMO_EOS_TOKEN];
  const pad = tokenizer.model.vocab[DEMO_PAD_TOKEN];
  if (eos === undefined || pad === undefined) throw new PeftError('INTERNAL', 'createDemoAssets: the trained tokenizer lost its special tokens');
  const config = demoModelConfig(vocabSize, { eos, pad });
  const textFiles: Record<string, string> = {
    'config.json': `${JSON.stringify(config, null, 2)}\n`,
    'generation_config.json': `${JSON.stringify({ bos_token_id: eos, eos_token_id: eos, pad_token_id: pad }, null, 2)}\n`,
    ...tokenizerFiles(tokenizer, { bosToken: DEMO_EOS_TOKEN, eosToken: DEMO_EOS_TOKEN, padToken: DEMO_PAD_TOKEN, modelMaxLength: config.max_position_embeddings }),
  };
  const tensors: TensorSource[] = demoTensorShapes(config).map(({ name, shape }) => ({
    name,
    dtype: 'F32',
    shape,
    data: () => demoTensorValues(config, name, shape, seed),
  }));

  await writeDirAtomically(target, true, async (temp) => {
    const files: Record<string, string> = {};
    for (const [name, text] of Object.entries(textFiles)) {
      await writeFile(join(temp, name), text);
      files[name] = sha256(text);
    }
    await writeSafetensors(join(temp, 'model.safetensors'), tensors, { metadata: { format: 'pt' } });
    files['model.safetensors'] = sha256(await readFile(join(temp, 'model.safetensors')));
    const sorted = Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const record: Stamp = { generator: GENERATOR, version: DEMO_ASSETS_VERSION, seed, inputs, files: sorted };
    await writeFile(join(temp, DEMO_STAMP_FILE), `${JSON.stringify(record, null, 2)}\n`);
  });
  return { dir: target, config, vocabSize, reused: false };
}
