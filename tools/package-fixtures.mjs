// What the packaging check feeds the packed packages: README examples, cut out of the READMEs
// as written, and a tiny Llama directory (seeded random f32 weights, a
// byte-level BPE tokenizer with no merges) for it to fine-tune in seconds on a software GPU.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The first ```ts block under the `## section` heading of a README, exactly as shown. */
export async function extractReadmeExample(readmePath, section) {
  const text = await readFile(readmePath, 'utf8');
  const at = text.indexOf(`\n## ${section}\n`);
  if (at < 0) throw new Error(`${readmePath}: no "## ${section}" section`);
  const block = /\n```ts\n([\s\S]*?)\n```\n/.exec(text.slice(at));
  if (!block?.[1]) throw new Error(`${readmePath}: no \`\`\`ts block under "## ${section}"`);
  return `${block[1]}\n`;
}

/** Printable characters for the 256 byte values, as byte-level BPE vocabularies spell them. */
function byteSymbols() {
  const keep = new Set();
  for (const [lo, hi] of [[33, 126], [161, 172], [174, 255]]) for (let b = lo; b <= hi; b++) keep.add(b);
  let shifted = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep.has(b) ? b : 256 + shifted++));
}

const SPECIAL = ['<|endoftext|>', '<|pad|>'];
const VOCAB = 256 + SPECIAL.length;
const HIDDEN = 64;
const INTER = 128;
const HEADS = 2;
const KV_HEADS = 1;
const HEAD_DIM = HIDDEN / HEADS;

function tokenizerJson() {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((content, i) => ({ id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(byteSymbols().map((s, i) => [s, i])),
      merges: [],
    },
  };
}

/** Writes config.json, model.safetensors and the tokenizer files of a one-layer Llama into `dir`. */
export async function writeTinyModel(dir, safetensorsModule) {
  const { writeSafetensors } = await import(pathToFileURL(safetensorsModule).href);
  await mkdir(dir, { recursive: true });
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    attention_bias: false,
    bos_token_id: 256,
    eos_token_id: 256,
    head_dim: HEAD_DIM,
    hidden_act: 'silu',
    hidden_size: HIDDEN,
    intermediate_size: INTER,
    max_position_embeddings: 512,
    mlp_bias: false,
    num_attention_heads: HEADS,
    num_hidden_layers: 1,
    num_key_value_heads: KV_HEADS,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    vocab_size: VOCAB,
  };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  const tokenizerConfig = { add_bos_token: false, add_eos_token: false, bos_token: null, eos_token: SPECIAL[0], pad_token: SPECIAL[1], model_max_length: 512, tokenizer_class: 'PreTrainedTokenizerFast' };
  await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);

  let state = 12345;
  const uniform = () => (state = (state * 48271) % 2147483647) / 2147483647;
  const tensor = (name, shape, scale, one = false) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (one ? 1 : 0) + scale * (2 * uniform() - 1);
    return { name, dtype: 'F32', shape, data };
  };
  const p = 'model.layers.0';
  const w = 1 / Math.sqrt(HIDDEN);
  await writeSafetensors(join(dir, 'model.safetensors'), [
    tensor('model.embed_tokens.weight', [VOCAB, HIDDEN], 1),
    tensor(`${p}.input_layernorm.weight`, [HIDDEN], 0.1, true),
    tensor(`${p}.self_attn.q_proj.weight`, [HEADS * HEAD_DIM, HIDDEN], w),
    tensor(`${p}.self_attn.k_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN], w),
    tensor(`${p}.self_attn.v_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN], w),
    tensor(`${p}.self_attn.o_proj.weight`, [HIDDEN, HEADS * HEAD_DIM], w),
    tensor(`${p}.post_attention_layernorm.weight`, [HIDDEN], 0.1, true),
    tensor(`${p}.mlp.gate_proj.weight`, [INTER, HIDDEN], w),
    tensor(`${p}.mlp.up_proj.weight`, [INTER, HIDDEN], w),
    tensor(`${p}.mlp.down_proj.weight`, [HIDDEN, INTER], 1 / Math.sqrt(INTER)),
    tensor('model.norm.weight', [HIDDEN], 0.1, true),
    tensor('lm_head.weight', [VOCAB, HIDDEN], w),
  ], { metadata: { format: 'pt' } });
  return dir;
}
