// Merges a PEFT adapter into a base checkpoint directory and writes a plain Hugging Face
// checkpoint (Node only: served by @peft-ts/merge/node), shard by shard: one tensor at a time is read, merged on the GPU and written, so the
// whole model is never in memory. A bitsandbytes 4-bit base is dequantized to the output dtype.
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import {
  bf16ToF32,
  Checkpoint,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  writeCheckpoint,
  writeDirAtomically,
  type DType as FileDType,
  type HostTensor,
  type TensorSource,
} from '@peft-ts/safetensors/node';
import { add, fromArray, noGrad, tidy, type Runtime } from '@peft-ts/tensor';
import { modelLayout, parseModelConfig } from '@peft-ts/models';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, moduleHyperparameters, resolveLoraConfig } from '@peft-ts/lora';
import { Bnb4bitCheckpoint, dequantize } from '@peft-ts/nf4-quant/node';
import { loraDelta } from './delta.js';

export type MergeDType = 'auto' | 'f32' | 'f16' | 'bf16';

export interface MergeProgress {
  tensor: string;
  index: number;
  total: number;
  merged: boolean;
}

export interface MergeCheckpointOptions {
  /** Output dtype of float weights: as stored ('auto'; a 4-bit base gives its compute dtype) or converted. */
  dtype?: MergeDType;
  maxShardBytes?: number;
  overwrite?: boolean;
  onProgress?: (p: MergeProgress) => void;
}

export interface MergeCheckpointResult {
  files: string[];
  mergedModules: number;
}

type FloatDType = 'F32' | 'F16' | 'BF16';
const FILE_DTYPE: Record<Exclude<MergeDType, 'auto'>, FloatDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const TORCH_DTYPE: Record<FloatDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
/** Files copied beside the weights: tokenizer and generation settings. */
const COPIED = /^(tokenizer.*|special_tokens_map\.json|generation_config\.json|vocab\.json|merges\.txt|.*\.model|added_tokens\.json|chat_template\.(jinja|json))$/;

const isFloat = (d: FileDType): d is FloatDType => d === 'F32' || d === 'F16' || d === 'BF16';

function toF32(t: HostTensor): Float32Array {
  if (t.dtype === 'BF16') return bf16ToF32(t.data as Uint16Array);
  if (t.dtype === 'F16') return f16ToF32(t.data as Uint16Array);
  return t.data as Float32Array;
}

function encode(values: Float32Array, dtype: FloatDType): ArrayBufferView {
  return dtype === 'F32' ? values : dtype === 'F16' ? f32ToF16(values) : f32ToBf16(values);
}

interface BaseReader {
  names(): string[];
  dtype(name: string): FileDType;
  shape(name: string): Promise<number[]>;
  readF32(name: string): Promise<Float32Array>;
  readBytes(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function openBase(baseDir: string, quantized: boolean): Promise<{ reader: BaseReader; computeDtype: FloatDType | null }> {
  if (!quantized) {
    const ckpt = await Checkpoint.open(baseDir);
    return {
      reader: {
        names: () => ckpt.names(),
        dtype: (n) => ckpt.info(n).dtype,
        shape: (n) => Promise.resolve(ckpt.info(n).shape),
        readF32: async (n) => toF32(await ckpt.read(n)),
        readBytes: (n) => ckpt.readBytes(n),
        close: () => ckpt.close(),
      },
      computeDtype: null,
    };
  }
  const bnb = await Bnb4bitCheckpoint.open(baseDir);
  const computeDtype: FloatDType = { float16: 'F16', float32: 'F32', bfloat16: 'BF16' }[bnb.quantizationConfig.computeDType] as FloatDType;
  return {
    reader: {
      // Every weight: the 4-bit ones (dequantized below) as well as those stored as they are.
      names: () => [...bnb.quantizedNames(), ...bnb.tensorNames()].sort(),
      dtype: (n) => (bnb.isQuantized(n) ? computeDtype : bnb.info(n).dtype),
      shape: async (n) => (bnb.isQuantized(n) ? [...(await bnb.readQuantized(n)).shape] : bnb.info(n).shape),
      readF32: async (n) => (bnb.isQuantized(n) ? dequantize(await bnb.readQuantized(n)) : toF32(await bnb.read(n))),
      readBytes: async (n) => new Uint8Array((await bnb.read(n)).data.buffer),
      close: () => bnb.close(),
    },
    computeDtype,
  };
}

export async function mergeIntoCheckpoint(rt: Runtime, baseDir: string, adapterDir: string, outDir: string, options: MergeCheckpointOptions = {}): Promise<MergeCheckpointResult> {
  const configPath = join(baseDir, 'config.json');
  const configJson = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  const config = parseModelConfig(configJson, configPath);
  const conv1d = new Set(modelLayout(config).linears.filter((l) => l.conv1d).map((l) => `${l.name}.weight`));
  const adapterConfigPath = join(adapterDir, ADAPTER_CONFIG);
  const lora = resolveLoraConfig(JSON.parse(await readFile(adapterConfigPath, 'utf8')) as Record<string, unknown>, adapterConfigPath);
  const adapterFile = join(adapterDir, ADAPTER_WEIGHTS);
  const adapter = await Checkpoint.open(adapterFile);
  const { reader, computeDtype } = await openBase(baseDir, configJson.quantization_config !== undefined);
  try {
    const names = reader.names();
    const present = new Set(names);
    // Adapter keys -> the base tensor they change: LoRA pairs, and whole replacements (modules_to_save, biases).
    const pairs = new Map<string, { module: string; A?: string; B?: string }>();
    const replaced = new Map<string, string>();
    for (const key of adapter.names()) {
      const m = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(key);
      if (m?.[1]) {
        const entry = pairs.get(`${m[1]}.weight`) ?? { module: m[1] };
        entry[m[2] === 'A' ? 'A' : 'B'] = key;
        pairs.set(`${m[1]}.weight`, entry);
      } else if (key.startsWith('base_model.model.')) replaced.set(key.slice('base_model.model.'.length), key);
      else throw new FormatError({ file: adapterFile, field: `tensor "${key}"`, expected: 'a PEFT key starting with base_model.model.', got: key });
    }
    for (const [weight, e] of pairs) {
      if (!present.has(weight)) throw new FormatError({ file: adapterFile, field: `module "${e.module}"`, expected: `a module of the base model in ${baseDir}`, got: 'a module the base does not have' });
      if (!e.A || !e.B) throw new FormatError({ file: adapterFile, field: `module "${e.module}"`, expected: 'both lora_A and lora_B', got: e.A ? 'only lora_A' : 'only lora_B' });
    }
    for (const t of replaced.keys()) {
      if (!present.has(t)) throw new FormatError({ file: adapterFile, field: `tensor "base_model.model.${t}"`, expected: `a tensor of the base model in ${baseDir}`, got: 'no such tensor' });
    }
    // Every adapter tensor's shape against the base, before anything is written: a wrong one
    // would otherwise fail half-way, inside the merge arithmetic.
    const shapes = new Map<string, number[]>();
    const shapeOf = async (name: string): Promise<number[]> => {
      const known = shapes.get(name);
      if (known) return known;
      const shape = await reader.shape(name);
      shapes.set(name, shape);
      return shape;
    };
    const expectShape = (key: string, expected: number[], got: number[]): void => {
      if (expected.length !== got.length || expected.some((d, i) => d !== got[i])) {
        throw new FormatError({ file: adapterFile, field: `tensor "${key}".shape`, expected: `[${expected.join(', ')}] (from the base in ${baseDir})`, got: `[${got.join(', ')}]` });
      }
    };
    for (const [weight, e] of pairs) {
      const base = await shapeOf(weight);
      // GPT-2 Conv1D weights are stored [in, out]; LoRA's A is [r, in] and B [out, r] either way.
      const [outFeatures = 0, inFeatures = 0] = conv1d.has(weight) ? [base[1], base[0]] : base;
      const { r } = moduleHyperparameters(lora, e.module);
      expectShape(e.A ?? '', [r, inFeatures], adapter.info(e.A ?? '').shape);
      expectShape(e.B ?? '', [outFeatures, r], adapter.info(e.B ?? '').shape);
    }
    for (const [t, key] of replaced) expectShape(key, await shapeOf(t), adapter.info(key).shape);
    const requested = options.dtype ?? 'auto';
    const outDtype = (stored: FileDType): FileDType => (!isFloat(stored) ? stored : requested === 'auto' ? stored : FILE_DTYPE[requested]);

    let index = 0;
    let mergedModules = 0;
    const total = names.length;
    const progress = (tensor: string, merged: boolean) => options.onProgress?.({ tensor, index: ++index, total, merged });
    const sources: TensorSource[] = [];
    for (const name of names) {
      const stored = reader.dtype(name);
      const dtype = outDtype(stored);
      const shape = await shapeOf(name);
      const pair = pairs.get(name);
      const swap = replaced.get(name);
      sources.push({
        name,
        dtype,
        shape,
        data: async () => {
          if (!isFloat(dtype)) {
            progress(name, false);
            return reader.readBytes(name);
          }
          if (swap) {
            progress(name, true);
            return encode(await adapter.readF32(swap), dtype);
          }
          const values = await reader.readF32(name);
          if (!pair?.A || !pair.B) {
            progress(name, false);
            return encode(values, dtype);
          }
          const [A, B] = [await adapter.readF32(pair.A), await adapter.readF32(pair.B)];
          const { scale } = moduleHyperparameters(lora, pair.module);
          // GPT-2 Conv1D weights are stored [in, out] (PEFT fan_in_fan_out): the update goes in transposed.
          const transposed = conv1d.has(name);
          const mergedT = noGrad(() =>
            tidy(() => {
              const w = fromArray(rt, values, shape, 'f32');
              const a = fromArray(rt, A, adapter.info(pair.A ?? '').shape, 'f32');
              const b = fromArray(rt, B, adapter.info(pair.B ?? '').shape, 'f32');
              return add(w, loraDelta(a, b, scale, transposed));
            }),
          );
          const merged = (await mergedT.toArray()) as Float32Array;
          mergedT.dispose();
          mergedModules += 1;
          progress(name, true);
          return encode(merged, dtype);
        },
      });
    }
    const files = await writeDirAtomically(outDir, options.overwrite ?? false, async (dir) => {
      const written = await writeCheckpoint(dir, sources, { ...(options.maxShardBytes ? { maxShardBytes: options.maxShardBytes } : {}), metadata: { format: 'pt' } });
      const outConfig: Record<string, unknown> = { ...configJson };
      delete outConfig.quantization_config;
      const floats = sources.map((s) => s.dtype).filter(isFloat);
      const main = requested !== 'auto' ? FILE_DTYPE[requested] : (computeDtype ?? floats[0]);
      if (main) outConfig[outConfig.torch_dtype !== undefined ? 'torch_dtype' : 'dtype'] = TORCH_DTYPE[main];
      await writeFile(join(dir, 'config.json'), `${JSON.stringify(outConfig, null, 2)}\n`);
      for (const f of await readdir(baseDir)) if (COPIED.test(f)) await copyFile(join(baseDir, f), join(dir, f));
      return written.files;
    });
    return { files, mergedModules };
  } finally {
    await adapter.close();
    await reader.close();
  }
}
