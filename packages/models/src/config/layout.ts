// The parameter layout of each family under Hugging Face names: every linear layer (the LoRA and
// 4-bit targets) and every other tensor, with shapes. Loading, targeting and estimates share it.
import type { ModelConfig } from './config.js';

export interface LinearLayout {
  /** HF module name, e.g. `model.layers.0.self_attn.q_proj` (the weight is `<name>.weight`). */
  name: string;
  /** Short name PEFT's target_modules match, e.g. `q_proj`, `c_attn`. */
  short: string;
  layer: number | null;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  /** GPT-2 Conv1D: the checkpoint stores the weight as [in, out]. */
  conv1d: boolean;
}

export interface TensorLayout {
  name: string;
  shape: number[];
  kind: 'embedding' | 'norm' | 'bias' | 'position';
}

export interface ModelLayout {
  linears: LinearLayout[];
  /** Non-linear tensors: embeddings, norms, biases of linears, learned positions. */
  others: TensorLayout[];
  /** The output head (`lm_head`), or null when tied to the input embedding. */
  lmHead: LinearLayout | null;
}

export function modelLayout(c: ModelConfig): ModelLayout {
  const linears: LinearLayout[] = [];
  const others: TensorLayout[] = [];
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const lin = (name: string, layer: number | null, inF: number, outF: number, bias: boolean, conv1d = false) => {
    const short = name.slice(name.lastIndexOf('.') + 1);
    linears.push({ name, short, layer, inFeatures: inF, outFeatures: outF, bias, conv1d });
    if (bias) others.push({ name: `${name}.bias`, shape: [outF], kind: 'bias' });
  };
  if (c.arch === 'gpt2') {
    others.push({ name: 'transformer.wte.weight', shape: [c.vocabSize, H], kind: 'embedding' });
    others.push({ name: 'transformer.wpe.weight', shape: [c.maxPositions, H], kind: 'position' });
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      for (const ln of ['ln_1', 'ln_2']) {
        others.push({ name: `${p}.${ln}.weight`, shape: [H], kind: 'norm' }, { name: `${p}.${ln}.bias`, shape: [H], kind: 'norm' });
      }
      lin(`${p}.attn.c_attn`, i, H, 3 * H, true, true);
      lin(`${p}.attn.c_proj`, i, H, H, true, true);
      lin(`${p}.mlp.c_fc`, i, H, I, true, true);
      lin(`${p}.mlp.c_proj`, i, I, H, true, true);
    }
    others.push({ name: 'transformer.ln_f.weight', shape: [H], kind: 'norm' }, { name: 'transformer.ln_f.bias', shape: [H], kind: 'norm' });
  } else {
    others.push({ name: 'model.embed_tokens.weight', shape: [c.vocabSize, H], kind: 'embedding' });
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      others.push({ name: `${p}.input_layernorm.weight`, shape: [H], kind: 'norm' }, { name: `${p}.post_attention_layernorm.weight`, shape: [H], kind: 'norm' });
      if (c.arch === 'phi3') {
        lin(`${p}.self_attn.qkv_proj`, i, H, q + 2 * kv, false);
        lin(`${p}.self_attn.o_proj`, i, q, H, false);
        lin(`${p}.mlp.gate_up_proj`, i, H, 2 * I, false);
        lin(`${p}.mlp.down_proj`, i, I, H, false);
      } else {
        lin(`${p}.self_attn.q_proj`, i, H, q, c.qkvBias);
        lin(`${p}.self_attn.k_proj`, i, H, kv, c.qkvBias);
        lin(`${p}.self_attn.v_proj`, i, H, kv, c.qkvBias);
        lin(`${p}.self_attn.o_proj`, i, q, H, c.oBias);
        lin(`${p}.mlp.gate_proj`, i, H, I, c.mlpBias);
        lin(`${p}.mlp.up_proj`, i, H, I, c.mlpBias);
        lin(`${p}.mlp.down_proj`, i, I, H, c.mlpBias);
      }
    }
    others.push({ name: 'model.norm.weight', shape: [H], kind: 'norm' });
  }
  const lmHead: LinearLayout | null = c.tieWordEmbeddings
    ? null
    : { name: 'lm_head', short: 'lm_head', layer: null, inFeatures: H, outFeatures: c.vocabSize, bias: false, conv1d: false };
  return { linears, others, lmHead };
}
