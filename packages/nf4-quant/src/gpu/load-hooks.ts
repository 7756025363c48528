// Linear-layer hooks for @peft-ts/models' loader: quantize each weight to 4 bits as it streams
// in, or load a bitsandbytes 4-bit checkpoint's layers as they are. Typed structurally, so this
// subpath needs no runtime dependency on models.
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { bf16ToF32, f16ToF32, type HostTensor } from '@peft-ts/safetensors';
import { fromArray, type Runtime, type Tensor } from '@peft-ts/tensor';
import { QUANT_TYPES, matchesModule, quantStateKey, readQuantized4bit, type QuantType, type TensorReader } from '../index.js';
import { Linear4bit, type Linear4bitOptions } from './linear-4bit.js';
import { quantize4bitGpu } from './quantize.js';
import { disposeQuantized4bit, uploadQuantized4bit, type Quantized4bitTensor } from './quantized-tensor.js';

/** What @peft-ts/models' loader hands a linear hook (its `LinearLoadContext`, the fields used here). */
export interface LinearHookContext {
  rt: Runtime;
  layout: { readonly name: string; readonly inFeatures: number; readonly outFeatures: number; readonly bias: boolean };
  /** The weight as stored, in [out, in] layout. */
  readWeight(): Promise<HostTensor>;
  /** The bias, or null. */
  readBias(): Promise<HostTensor | null>;
  /** The open checkpoint (for layers stored in another layout). */
  checkpoint: TensorReader;
}

/** A `LinearLoadHook`: a 4-bit layer, or undefined to let the loader build its dense layer. */
export type Linear4bitHook = (ctx: LinearHookContext) => Promise<Linear4bit | undefined>;

export interface Nf4LinearHookOptions {
  /** 'nf4' (default) or 'fp4'. */
  type?: QuantType;
  /** Elements per absmax block (default 64). */
  blocksize?: number;
  /** Quantize the absmax values too (default true: QLoRA's setting, about 4.13 bits per parameter). */
  doubleQuant?: boolean;
  /** Compute dtype of the layers (default 'f32'). */
  computeDtype?: Linear4bitOptions['computeDtype'];
  /** Modules left dense, matched as whole dotted components (`mlp.down_proj`, `layers.0`). */
  skipModules?: readonly string[];
}

const GPU_DTYPE = { F32: 'f32', F16: 'f16', BF16: 'bf16' } as const;

function widenBias(t: HostTensor, where: string): Float32Array {
  if (t.dtype === 'F32') return t.data as Float32Array;
  if (t.dtype === 'F16') return f16ToF32(t.data as Uint16Array);
  if (t.dtype === 'BF16') return bf16ToF32(t.data as Uint16Array);
  throw new UnsupportedError({ what: 'bias dtype', got: t.dtype, supported: ['F32', 'F16', 'BF16'], where });
}

/** The layer's bias as an f32 weight tensor (a 16-bit bias widens exactly), or null. */
async function loadBias(ctx: LinearHookContext): Promise<Tensor | null> {
  const host = await ctx.readBias();
  if (!host) return null;
  const name = `${ctx.layout.name}.bias`;
  return fromArray(ctx.rt, widenBias(host, name), host.shape, 'f32', { tag: 'weights', name }).keep();
}

/** The layer over `weight` with the checkpoint's bias; the weight is freed if the bias fails to load. */
async function withBias(ctx: LinearHookContext, weight: Quantized4bitTensor, options: Linear4bitOptions): Promise<Linear4bit> {
  let bias: Tensor | null;
  try {
    bias = await loadBias(ctx);
  } catch (error) {
    disposeQuantized4bit(weight);
    throw error;
  }
  return new Linear4bit(ctx.layout.name, weight, bias, options);
}

/**
 * Quantizes every linear weight as the loader reads it: the stored f32/f16/bf16 weight is
 * uploaded, quantized on the GPU (bit-identical to the CPU path and bitsandbytes) and freed at
 * once, so a model never sits on the GPU in 16 bits; only one layer's 16-bit copy exists at a
 * time. Layers named in `skipModules` stay dense.
 */
export function nf4LinearHook(options: Nf4LinearHookOptions = {}): Linear4bitHook {
  const quantOptions = { type: options.type ?? 'nf4', blocksize: options.blocksize ?? 64, doubleQuant: options.doubleQuant ?? true } as const;
  const layerOptions: Linear4bitOptions = options.computeDtype ? { computeDtype: options.computeDtype } : {};
  return async (ctx) => {
    const name = ctx.layout.name;
    if ((options.skipModules ?? []).some((skip) => matchesModule(name, skip))) return undefined;
    const host = await ctx.readWeight();
    const dtype = GPU_DTYPE[host.dtype as keyof typeof GPU_DTYPE] as (typeof GPU_DTYPE)[keyof typeof GPU_DTYPE] | undefined;
    if (!dtype) throw new UnsupportedError({ what: 'weight dtype to quantize', got: host.dtype, supported: Object.keys(GPU_DTYPE), where: `${name}.weight` });
    // The 16-bit upload counts as a weight while it exists, so peak accounting shows it.
    const dense = fromArray(ctx.rt, host.data as Float32Array | Uint16Array, host.shape, dtype, { tag: 'weights', name: `${name}.weight` });
    const q = await quantize4bitGpu(dense, { ...quantOptions, name: `${name}.weight` }).finally(() => dense.dispose());
    return withBias(ctx, q, layerOptions);
  };
}

export interface Bnb4bitLinearHookOptions {
  /** Compute dtype of the layers (default 'f32'). */
  computeDtype?: Linear4bitOptions['computeDtype'];
}

/**
 * Builds each linear layer of a bitsandbytes 4-bit checkpoint (transformers' `-bnb-4bit` layout)
 * from its packed weight and quant-state tensors, read through `readQuantized4bit` and uploaded
 * as they are: nothing is dequantized. Layers the checkpoint stores unquantized (no quant state)
 * are left to the loader's dense path.
 */
export function bnb4bitLinearHook(options: Bnb4bitLinearHookOptions = {}): Linear4bitHook {
  const layerOptions: Linear4bitOptions = options.computeDtype ? { computeDtype: options.computeDtype } : {};
  return async (ctx) => {
    const { name, outFeatures, inFeatures } = ctx.layout;
    const key = `${name}.weight`;
    if (!QUANT_TYPES.some((t) => ctx.checkpoint.has(quantStateKey(key, t)))) return undefined;
    const q = await readQuantized4bit(ctx.checkpoint, key);
    if (q.shape.length !== 2 || q.shape[0] !== outFeatures || q.shape[1] !== inFeatures) {
      const file = ctx.checkpoint.has(key) ? (ctx.checkpoint.info(key).file ?? ctx.checkpoint.path ?? '(checkpoint)') : '(checkpoint)';
      throw new FormatError({ file, field: `${key} quant_state "shape"`, expected: `[${outFeatures}, ${inFeatures}] for this config`, got: `[${q.shape.join(', ')}]` });
    }
    return withBias(ctx, uploadQuantized4bit(ctx.rt, q, { name: key }), layerOptions);
  };
}
