// The causal language model: Llama-family decoders (Llama, Mistral, Qwen2, Phi-3) and GPT-2,
// built from @peft-ts/tensor ops with autograd through every layer. Linear modules are
// addressable by their Hugging Face names so LoRA and 4-bit layers can replace them.
import { PeftError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import {
  add,
  attention,
  cast,
  checkpoint,
  decodeAttention,
  embedding,
  fromArray,
  gelu,
  layerNorm,
  linear,
  reshape,
  rmsNorm,
  siluMul,
  split,
  type KvCache,
  type Runtime,
  type Tensor,
} from '@peft-ts/tensor';
import type { ModelConfig } from '../config/config.js';
import type { Linear } from '../modules/linear.js';
import { RotaryEmbedding } from './rotary.js';

export interface ForwardOptions {
  /** i32 [B, T]: 1 for real tokens, 0 for padding. */
  attentionMask?: Tensor;
  /** i32 [B, T]; default 0..T-1 per row. */
  positionIds?: Tensor;
  /** i32 [B, T]: packed sequences; attention does not cross segments. */
  segmentIds?: Tensor;
  /** Generation: one cache per layer; new keys/values are appended and queries attend to the cache. */
  kvCache?: readonly KvCache[];
  /** Generation: i32 [B, maxLength] mask over cache positions (1 = real token). */
  cacheMask?: Tensor;
}

export interface ModelParts {
  config: ModelConfig;
  linears: Map<string, Linear>;
  tensors: Map<string, Tensor>;
  lmHead: Linear | null;
}

export class CausalLM {
  readonly rt: Runtime;
  readonly config: ModelConfig;
  private readonly linearMap: Map<string, Linear>;
  private readonly tensors: Map<string, Tensor>;
  private lmHead: Linear | null;
  private readonly rotary: RotaryEmbedding | null;
  private readonly checkpointed = new Set<number>();
  /**
   * Storage dtype of the residual stream between layers. 'f16' halves what gradient checkpointing
   * keeps (the layer inputs) and what flows between layers; every op still computes in f32.
   */
  activationDtype: 'f32' | 'f16' = 'f32';
  /**
   * Where warnings go (default console.warn, stderr in Node), e.g. a sequence longer than max_position_embeddings on a
   * rotary model: it runs, as in transformers, but the model never saw such positions.
   */
  onWarning: (message: string) => void = (message) => console.warn(`warning: ${message}`);
  private warnedPositions = false;

  constructor(rt: Runtime, parts: ModelParts) {
    this.rt = rt;
    this.config = parts.config;
    this.linearMap = parts.linears;
    this.tensors = parts.tensors;
    this.lmHead = parts.lmHead;
    const c = parts.config;
    this.rotary = c.rope ? new RotaryEmbedding(rt, c.rope, c.headDim, c.maxPositions) : null;
  }

  /** HF names of every replaceable linear (not the output head). */
  linearNames(): string[] {
    return [...this.linearMap.keys()];
  }

  getLinear(name: string): Linear {
    const l = name === 'lm_head' ? this.lmHead : this.linearMap.get(name);
    if (!l) throw new PeftError('NO_SUCH_MODULE', `${this.config.className} has no linear module "${name}" (e.g. ${this.linearNames().slice(0, 3).join(', ')})`);
    return l;
  }

  /** Replaces a linear module (e.g. with a LoRA layer wrapping it). Returns the previous one. */
  setLinear(name: string, layer: Linear): Linear {
    const prev = this.getLinear(name);
    if (layer.inFeatures !== prev.inFeatures || layer.outFeatures !== prev.outFeatures) {
      throw new ShapeMismatchError({ op: `setLinear ${name}`, expected: [prev.outFeatures, prev.inFeatures], got: [layer.outFeatures, layer.inFeatures] });
    }
    if (name === 'lm_head') this.lmHead = layer;
    else this.linearMap.set(name, layer);
    return prev;
  }

  private readonly overrides = new Map<string, Tensor>();

  /**
   * Uses `tensor` in place of the named base tensor in forward (e.g. a trainable copy of the
   * embedding for PEFT's modules_to_save); undefined restores the base tensor.
   */
  setTensorOverride(name: string, tensor: Tensor | undefined): void {
    const base = this.tensors.get(name);
    if (!base) throw new PeftError('NO_SUCH_TENSOR', `${this.config.className} has no tensor "${name}"`);
    if (tensor === undefined) this.overrides.delete(name);
    else {
      if (tensor.shape.length !== base.shape.length || tensor.shape.some((d, i) => d !== base.shape[i])) {
        throw new ShapeMismatchError({ op: `setTensorOverride ${name}`, expected: base.shape, got: tensor.shape });
      }
      this.overrides.set(name, tensor);
    }
  }

  /** A non-linear parameter (embedding, norm) by HF name. */
  getTensor(name: string): Tensor {
    const t = this.overrides.get(name) ?? this.tensors.get(name);
    if (!t) throw new PeftError('NO_SUCH_TENSOR', `${this.config.className} has no tensor "${name}"`);
    return t;
  }

  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  /** Turns per-layer gradient checkpointing on or off (all layers when `layers` is omitted). */
  setGradientCheckpointing(enabled: boolean, layers?: readonly number[]): void {
    const which = layers ?? Array.from({ length: this.config.numLayers }, (_, i) => i);
    for (const i of which) {
      if (enabled) this.checkpointed.add(i);
      else this.checkpointed.delete(i);
    }
  }

  /** Trainable parameters of every module (LoRA weights once injected), by name. */
  parameters(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, l] of this.linearMap) l.parameters().forEach((p, i) => out.set(p.name ?? `${name}#${i}`, p));
    if (this.lmHead) this.lmHead.parameters().forEach((p, i) => out.set(p.name ?? `lm_head#${i}`, p));
    for (const [name, t] of this.tensors) if (t.requiresGrad) out.set(name, t);
    return out;
  }

  private lin(name: string, x: Tensor): Tensor {
    return this.getLinear(name).forward(x);
  }

  private defaultPositions(b: number, t: number): Tensor {
    const data = new Int32Array(b * t);
    for (let i = 0; i < b; i++) for (let j = 0; j < t; j++) data[i * t + j] = j;
    return fromArray(this.rt, data, [b, t], 'i32');
  }

  /**
   * Prepares the model for sequences of n positions (0 .. n-1). Learned positions (GPT-2) stop at
   * n_positions and are refused past it; rotary models compute the angles for any position and
   * warn once past max_position_embeddings, as transformers does.
   */
  reservePositions(n: number): void {
    const c = this.config;
    if (n <= c.maxPositions) return;
    if (!this.rotary) {
      throw new UnsupportedError({ what: 'sequence length', got: n, where: `${c.className} (learned positions: n_positions ${c.maxPositions})` });
    }
    if (!this.warnedPositions) {
      this.warnedPositions = true;
      this.onWarning(`${c.className}: sequence length ${n} is past max_position_embeddings ${c.maxPositions}; rotary angles are computed for every position, but the model was not trained on positions this far, so expect worse output`);
    }
    this.rotary.reserve(n);
  }

  /** Logits [B, T, V] (f32) for input ids i32 [B, T]. */
  forward(inputIds: Tensor, options: ForwardOptions = {}): Tensor {
    const [b, t] = inputIds.shape;
    if (inputIds.shape.length !== 2 || b === undefined || t === undefined) {
      throw new ShapeMismatchError({ op: 'CausalLM.forward', expected: '[batch, seq] token ids', got: inputIds.shape });
    }
    if (inputIds.dtype !== 'i32') throw new ShapeMismatchError({ op: 'CausalLM.forward', expected: 'i32 token ids', got: inputIds.dtype });
    // With a cache, new positions continue after the cached ones, up to the cache's length.
    this.reservePositions(Math.max(t, options.kvCache?.[0]?.maxLength ?? 0));
    const positions = options.positionIds ?? this.defaultPositions(b, t);
    const h = this.config.arch === 'gpt2' ? this.forwardGpt2(inputIds, positions, options) : this.forwardDecoder(inputIds, positions, options);
    if (!options.positionIds) positions.dispose();
    return h;
  }

  private attn(q: Tensor, k: Tensor, v: Tensor, options: ForwardOptions, layer: number): Tensor {
    const cache = options.kvCache?.[layer];
    if (cache) {
      cache.append(k, v);
      return decodeAttention(q, cache, {
        ...(options.cacheMask ? { attentionMask: options.cacheMask } : {}),
        ...(this.config.slidingWindow !== null ? { slidingWindow: this.config.slidingWindow } : {}),
      });
    }
    const opts: Parameters<typeof attention>[3] = { causal: true };
    if (options.attentionMask) opts.attentionMask = options.attentionMask;
    if (options.segmentIds) opts.segmentIds = options.segmentIds;
    if (this.config.slidingWindow !== null) opts.slidingWindow = this.config.slidingWindow;
    return attention(q, k, v, opts);
  }

  private forwardDecoder(ids: Tensor, positions: Tensor, options: ForwardOptions): Tensor {
    const c = this.config;
    const [b = 0, t = 0] = ids.shape;
    const D = c.headDim;
    const rotary = this.rotary;
    if (!rotary) throw new UnsupportedError({ what: 'model without rotary embeddings', got: c.arch });
    let h = this.between(embedding(ids, this.getTensor('model.embed_tokens.weight')));
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const layer = (x: Tensor, pos: Tensor, o: ForwardOptions): Tensor => {
        const xn = rmsNorm(x, this.getTensor(`${p}.input_layernorm.weight`), c.normEps);
        let q: Tensor;
        let k: Tensor;
        let v: Tensor;
        if (c.arch === 'phi3') {
          const qkv = this.lin(`${p}.self_attn.qkv_proj`, xn);
          [q, k, v] = split(qkv, [c.numHeads * D, c.numKvHeads * D, c.numKvHeads * D], -1) as [Tensor, Tensor, Tensor];
        } else {
          q = this.lin(`${p}.self_attn.q_proj`, xn);
          k = this.lin(`${p}.self_attn.k_proj`, xn);
          v = this.lin(`${p}.self_attn.v_proj`, xn);
        }
        const q4 = rotary.apply(reshape(q, [b, t, c.numHeads, D]), pos);
        const k4 = rotary.apply(reshape(k, [b, t, c.numKvHeads, D]), pos);
        const a = this.attn(q4, k4, reshape(v, [b, t, c.numKvHeads, D]), o, i);
        const h1 = add(x, this.lin(`${p}.self_attn.o_proj`, reshape(a, [b, t, c.numHeads * D])));
        const hn = rmsNorm(h1, this.getTensor(`${p}.post_attention_layernorm.weight`), c.normEps);
        let act: Tensor;
        if (c.arch === 'phi3') {
          const gu = this.lin(`${p}.mlp.gate_up_proj`, hn);
          const [gate, up] = split(gu, [c.intermediateSize, c.intermediateSize], -1) as [Tensor, Tensor];
          act = siluMul(gate, up);
        } else {
          act = siluMul(this.lin(`${p}.mlp.gate_proj`, hn), this.lin(`${p}.mlp.up_proj`, hn));
        }
        return add(h1, this.lin(`${p}.mlp.down_proj`, act));
      };
      h = this.between(this.runLayer(layer, h, positions, options, i));
    }
    const hn = rmsNorm(h, this.getTensor('model.norm.weight'), c.normEps);
    return this.head(hn, 'model.embed_tokens.weight');
  }

  private forwardGpt2(ids: Tensor, positions: Tensor, options: ForwardOptions): Tensor {
    const c = this.config;
    const [b = 0, t = 0] = ids.shape;
    const H = c.hiddenSize;
    const D = c.headDim;
    const approximate = c.activation === 'gelu' ? 'none' : 'tanh';
    let h = this.between(add(embedding(ids, this.getTensor('transformer.wte.weight')), embedding(positions, this.getTensor('transformer.wpe.weight'))));
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      const layer = (x: Tensor, _pos: Tensor, o: ForwardOptions): Tensor => {
        const xn = layerNorm(x, this.getTensor(`${p}.ln_1.weight`), this.getTensor(`${p}.ln_1.bias`), c.normEps);
        const qkv = this.lin(`${p}.attn.c_attn`, xn);
        const [q, k, v] = split(qkv, [H, H, H], -1) as [Tensor, Tensor, Tensor];
        const shape = [b, t, c.numHeads, D];
        const a = this.attn(reshape(q, shape), reshape(k, shape), reshape(v, shape), o, i);
        const h1 = add(x, this.lin(`${p}.attn.c_proj`, reshape(a, [b, t, H])));
        const hn = layerNorm(h1, this.getTensor(`${p}.ln_2.weight`), this.getTensor(`${p}.ln_2.bias`), c.normEps);
        const m = this.lin(`${p}.mlp.c_proj`, gelu(this.lin(`${p}.mlp.c_fc`, hn), { approximate }));
        return add(h1, m);
      };
      h = this.between(this.runLayer(layer, h, positions, options, i));
    }
    const hn = layerNorm(h, this.getTensor('transformer.ln_f.weight'), this.getTensor('transformer.ln_f.bias'), c.normEps);
    return this.head(hn, 'transformer.wte.weight');
  }

  /** The residual stream as stored between layers (see activationDtype). */
  private between(h: Tensor): Tensor {
    return this.activationDtype === 'f16' && h.dtype !== 'f16' ? cast(h, 'f16') : h;
  }

  /**
   * Runs one decoder layer, under gradient checkpointing when enabled for it. Everything the layer
   * reads besides its input (positions, masks) goes in as checkpoint inputs, so it stays alive until
   * the recomputation in backward.
   */
  private runLayer(fn: (x: Tensor, pos: Tensor, o: ForwardOptions) => Tensor, h: Tensor, positions: Tensor, options: ForwardOptions, i: number): Tensor {
    if (!this.checkpointed.has(i) || options.kvCache) return fn(h, positions, options);
    const keys: ('attentionMask' | 'segmentIds')[] = [];
    const extras: Tensor[] = [];
    for (const key of ['attentionMask', 'segmentIds'] as const) {
      const t = options[key];
      if (t) {
        keys.push(key);
        extras.push(t);
      }
    }
    return checkpoint(
      (x, pos, ...rest) => {
        const o: ForwardOptions = {};
        keys.forEach((key, j) => {
          const t = rest[j];
          if (t) o[key] = t;
        });
        return fn(x, pos ?? positions, o);
      },
      h,
      positions,
      ...extras,
    );
  }

  private head(h: Tensor, tiedName: string): Tensor {
    if (this.lmHead) return this.lmHead.forward(h);
    // A tied output head reuses the embedding matrix [V, H] as its [out, in] weight.
    return linear(h, this.getTensor(tiedName));
  }


  dispose(): void {
    for (const l of this.linearMap.values()) l.dispose();
    this.lmHead?.dispose();
    for (const t of this.tensors.values()) t.dispose();
    this.rotary?.dispose();
  }
}
