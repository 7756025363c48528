// Streams a checkpoint to the GPU one tensor at a time: the host never holds more than the
// tensor being uploaded. Linear weights pass through an optional hook (e.g. to quantize to NF4
// as they arrive, so a 7B model never exists in 16 bits on the GPU).
import { FormatError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { bf16ToF32, Checkpoint, f16ToF32, type HostTensor } from '@peft-ts/safetensors';
import { fromArray, type DType, type Runtime, type Tensor } from '@peft-ts/tensor';
import type { ModelConfig } from '../config/config.js';
import { modelLayout, type LinearLayout } from '../config/layout.js';
import { DenseLinear, type Linear } from '../modules/linear.js';

export type WeightDType = 'auto' | 'f32' | 'f16' | 'bf16';

export interface LinearLoadContext {
  rt: Runtime;
  config: ModelConfig;
  layout: LinearLayout;
  /** The weight as stored, shape-checked and in [out, in] layout (GPT-2's Conv1D transposed). Read on demand. */
  readWeight(): Promise<HostTensor>;
  /** The bias (f32 host copy widened from the stored dtype), or null. */
  readBias(): Promise<HostTensor | null>;
  /** The checkpoint, for layers stored in another layout (e.g. bitsandbytes 4-bit states). */
  checkpoint: Checkpoint;
  /** The dtype the caller asked frozen weights to have on the GPU. */
  dtype: WeightDType;
}

/** Returns a Linear built from the host weight, or undefined to get the default dense layer. */
export type LinearLoadHook = (ctx: LinearLoadContext) => Linear | undefined | Promise<Linear | undefined>;

export interface LoadProgress {
  tensor: string;
  index: number;
  total: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface WeightLoadOptions {
  /** GPU dtype of frozen 16/32-bit weights: as stored ('auto', default) or converted. */
  dtype?: WeightDType;
  linearHook?: LinearLoadHook;
  onProgress?: (p: LoadProgress) => void;
}

export interface LoadedWeights {
  linears: Map<string, Linear>;
  /** Embeddings, norms, positions (by HF tensor name). */
  tensors: Map<string, Tensor>;
  /** lm_head, or null when tied to the input embedding. */
  lmHead: Linear | null;
}

const SAFE_TO_GPU: Record<string, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

function toF32(t: HostTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.dtype === 'F64') return Float32Array.from(t.data as Float64Array);
  if (t.dtype === 'BF16') return bf16ToF32(t.data as Uint16Array);
  if (t.dtype === 'F16') return f16ToF32(t.data as Uint16Array);
  throw new UnsupportedError({ what: 'weight dtype', got: t.dtype, supported: ['F32', 'F16', 'BF16'] });
}

/** Uploads a host tensor as `dtype` ('auto' keeps F32/F16/BF16 as they are). */
export function uploadWeight(rt: Runtime, t: HostTensor, dtype: WeightDType, name: string): Tensor {
  const stored = SAFE_TO_GPU[t.dtype];
  if (!stored) throw new UnsupportedError({ what: 'weight dtype', got: t.dtype, supported: Object.keys(SAFE_TO_GPU), where: name });
  const target: DType = dtype === 'auto' ? stored : dtype;
  const data = target === stored ? (t.data as Float32Array | Uint16Array) : toF32(t);
  return fromArray(rt, data, t.shape, target, { tag: 'weights', name }).keep();
}

/** [in, out] -> [out, in] on the host (GPT-2 Conv1D weights), any element type. */
export function transposeHost(t: HostTensor): HostTensor {
  const [rows, cols] = t.shape;
  if (rows === undefined || cols === undefined || t.shape.length !== 2) throw new ShapeMismatchError({ op: 'transpose Conv1D weight', expected: '2-D', got: t.shape });
  const src = t.data;
  const Ctor = src.constructor as new (n: number) => typeof src;
  const out = new Ctor(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) (out as Float32Array)[c * rows + r] = (src as Float32Array)[r * cols + c] ?? 0;
  return { dtype: t.dtype, shape: [cols, rows], data: out };
}

function checkShape(file: string, name: string, got: readonly number[], expected: readonly number[]): void {
  if (got.length !== expected.length || got.some((d, i) => d !== expected[i])) {
    throw new FormatError({ file, field: `tensor "${name}".shape`, expected: `[${expected.join(', ')}] for this config`, got: `[${got.join(', ')}]` });
  }
}

/** Loads every parameter the config's layout names from `ckpt` (extra tensors are reported, not loaded). */
export async function loadWeights(rt: Runtime, config: ModelConfig, ckpt: Checkpoint, dir: string, options: WeightLoadOptions = {}): Promise<LoadedWeights> {
  const layout = modelLayout(config);
  const dtype = options.dtype ?? 'auto';
  if (config.raw.quantization_config !== undefined && !options.linearHook) {
    throw new UnsupportedError({
      what: 'quantized checkpoint without a loader for its layers',
      got: (config.raw.quantization_config as { quant_method?: unknown }).quant_method ?? 'quantization_config',
      where: `${dir}: config.json quantization_config (pass linearHook: bnb4bitLinearHook() from @peft-ts/nf4-quant/gpu)`,
    });
  }
  const needed: string[] = [];
  for (const l of layout.linears) needed.push(`${l.name}.weight`);
  for (const t of layout.others) needed.push(t.name);
  if (layout.lmHead) needed.push('lm_head.weight');
  const missing = needed.filter((n) => !ckpt.has(n));
  if (missing.length > 0) {
    throw new FormatError({
      file: ckpt.files.length === 1 ? (ckpt.files[0] ?? dir) : dir,
      field: `tensor "${missing[0]}"`,
      expected: `every tensor of a ${config.className} with ${config.numLayers} layers`,
      got: `missing (${missing.length} missing${missing.length > 1 ? `, e.g. ${missing.slice(1, 4).join(', ')}` : ''})`,
    });
  }
  const bytesTotal = needed.reduce((s, n) => s + ckpt.info(n).byteLength, 0);
  let bytesDone = 0;
  let index = 0;
  const progress = (tensor: string) => {
    bytesDone += ckpt.info(tensor).byteLength;
    index += 1;
    options.onProgress?.({ tensor, index, total: needed.length, bytesDone, bytesTotal });
  };
  const tensors = new Map<string, Tensor>();
  const linears = new Map<string, Linear>();
  const read = async (name: string, expected: readonly number[]): Promise<HostTensor> => {
    const info = ckpt.info(name);
    checkShape(info.file, name, info.shape, expected);
    return ckpt.read(name);
  };
  try {
    for (const t of layout.others) {
      if (t.kind === 'bias') continue; // loaded with their linear
      tensors.set(t.name, uploadWeight(rt, await read(t.name, t.shape), dtype, t.name));
      progress(t.name);
    }
    const loadLinear = async (l: LinearLayout): Promise<Linear> => {
      const wName = `${l.name}.weight`;
      const readWeight = async () => {
        const w = await read(wName, l.conv1d ? [l.inFeatures, l.outFeatures] : [l.outFeatures, l.inFeatures]);
        return l.conv1d ? transposeHost(w) : w;
      };
      const readBias = async () => (l.bias ? read(`${l.name}.bias`, [l.outFeatures]) : null);
      const hooked = await options.linearHook?.({ rt, config, layout: l, readWeight, readBias, checkpoint: ckpt, dtype });
      let result = hooked;
      if (!result) {
        const bias = await readBias();
        // Biases are tiny: kept in f32 (a 16-bit bias widens to f32 exactly).
        result = new DenseLinear(l.name, uploadWeight(rt, await readWeight(), dtype, wName), bias ? uploadWeight(rt, bias, 'f32', `${l.name}.bias`) : null);
      }
      progress(wName);
      if (l.bias) progress(`${l.name}.bias`);
      return result;
    };
    for (const l of layout.linears) linears.set(l.name, await loadLinear(l));
    let lmHead: Linear | null = null;
    if (layout.lmHead) {
      // The output head stays dense (transformers' bnb integration skips lm_head too).
      const w = await read('lm_head.weight', [layout.lmHead.outFeatures, layout.lmHead.inFeatures]);
      lmHead = new DenseLinear('lm_head', uploadWeight(rt, w, dtype, 'lm_head.weight'));
      progress('lm_head.weight');
    }
    return { linears, tensors, lmHead };
  } catch (error) {
    for (const t of tensors.values()) t.dispose();
    for (const l of linears.values()) l.dispose();
    throw error;
  }
}
