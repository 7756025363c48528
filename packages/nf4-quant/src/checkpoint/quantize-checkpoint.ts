// Streaming a Hugging Face checkpoint into a bitsandbytes 4-bit checkpoint, one tensor at a
// time: the output is what transformers saves after loading the model with load_in_4bit (Node only).
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DTypeError, PeftError } from '@peft-ts/errors';
import { Checkpoint, writeCheckpoint, type HostTensor, type TensorSource } from '@peft-ts/safetensors/node';
import { DYNAMIC_MAP_SIGNED } from '../codes/dynamic-map.js';
import { quantMapTable, type QuantType } from '../codes/four-bit-codes.js';
import { widenInput } from '../quantize/input.js';
import { checkBlocksize, checkQuantType, computeAbsmax, nestAbsmax, quantize } from '../quantize/quantize-4bit.js';
import type { Quantized4bit, QuantizeInput, SourceDType } from '../quantize/types.js';
import { quantStateJson, quantStateKey } from '../serialize/quant-state.js';
import { defaultQuantizationConfig } from '../serialize/quantization-config.js';
import { checkOutputDir, dirTree, writeDirAtomically } from '@peft-ts/safetensors/node';
import { quantizedConfigText, readConfigJsonFrom } from './config-json.js';
import { CONV1D_MODEL_TYPES, isQuantizableWeight, type TensorMeta } from './select-weights.js';

export interface QuantizeProgress {
  /** The input tensor just handled. */
  tensor: string;
  /** How many input tensors are done, this one included. */
  index: number;
  /** Number of input tensors. */
  total: number;
  /** Input bytes of the tensors done so far. */
  bytesDone: number;
  /** Input bytes of all tensors. */
  bytesTotal: number;
  /** Whether this tensor was quantized. */
  quantized: boolean;
}

export interface QuantizeCheckpointOptions {
  /** 'nf4' (default) or 'fp4'. */
  type?: QuantType;
  /** Elements per absmax block (default 64, the only size transformers uses). */
  blocksize?: number;
  /** Double-quantize the absmax values (`bnb_4bit_use_double_quant`; default false). */
  doubleQuant?: boolean;
  /** `bnb_4bit_compute_dtype` to record (default 'float32'). */
  computeDType?: SourceDType;
  /** `llm_int8_skip_modules`: module paths (or runs of path components) to keep unquantized. */
  skipModules?: readonly string[];
  /** Replaces the default choice of tensors to quantize. */
  include?: (name: string, meta: TensorMeta) => boolean;
  /** Largest output shard in bytes (default 5e9). */
  maxShardBytes?: number;
  /** Replace an existing output directory (default false). */
  overwrite?: boolean;
  /** Called once per input tensor as it is written. */
  onProgress?: (progress: QuantizeProgress) => void;
}

export interface QuantizeCheckpointResult {
  outDir: string;
  /** The .safetensors files written. */
  files: string[];
  /** Keys of the weights quantized. */
  quantized: string[];
  /** Keys of the tensors copied in their dtype. */
  kept: string[];
  /** Other files copied (tokenizer, generation config, ...). */
  copied: string[];
}

// Weight files of any format are not copied: the output has its own.
const NOT_COPIED = /(\.safetensors|\.safetensors\.index\.json|\.bin|\.bin\.index\.json|\.pt|\.pth|\.ckpt|\.h5|\.msgpack|\.gguf)$/;

interface Planned {
  name: string;
  meta: TensorMeta;
  bytes: number;
  quantize: boolean;
  /** Quantized shape ([out, in]; Conv1D weights are transposed). */
  shape: number[];
  transposed: boolean;
  /** JSON state and nested statistics, known before any data is written. */
  json?: string;
  nestedAbsmax?: Float32Array;
}

/**
 * Quantizes the linear weights of `inDir`'s decoder blocks to 4 bits and writes a
 * bitsandbytes-layout checkpoint to `outDir` (atomically: a temporary directory renamed at the
 * end). Norms, embeddings, lm_head and biases keep their dtype and bytes. config.json gets the
 * `quantization_config` transformers writes; tokenizer and generation files are copied.
 *
 * Memory: one tensor (as float32) and its quantized form at a time. The safetensors header
 * needs every tensor's size first, so with double quantization each weight is read once up
 * front to fix the JSON state (its offset), and again when its bytes are written.
 */
export async function quantizeCheckpoint(
  inDir: string,
  outDir: string,
  options: QuantizeCheckpointOptions = {},
): Promise<QuantizeCheckpointResult> {
  const quantType = checkQuantType(options.type ?? 'nf4', 'quantizeCheckpoint');
  const blocksize = checkBlocksize(options.blocksize ?? 64, 'quantizeCheckpoint');
  const doubleQuant = options.doubleQuant ?? false;
  const qconfig = defaultQuantizationConfig({
    quantType,
    doubleQuant,
    computeDType: options.computeDType ?? 'float32',
    skipModules: options.skipModules ? [...options.skipModules] : null,
  });
  // Fail before the (possibly long) first pass rather than after it.
  await checkOutputDir(resolve(outDir), options.overwrite ?? false);
  const config = await readConfigJsonFrom(dirTree(inDir));
  const configText = quantizedConfigText(config, qconfig, join(inDir, 'config.json'));
  const transpose = CONV1D_MODEL_TYPES.includes(String(config.model_type));
  const include = options.include ?? ((name: string, meta: TensorMeta) => isQuantizableWeight(name, meta, options.skipModules));

  const input = await Checkpoint.open(inDir);
  try {
    const plan: Planned[] = input.names().map((name) => {
      const info = input.info(name);
      const meta = { dtype: info.dtype, shape: info.shape };
      const q = include(name, meta);
      const transposed = q && transpose && info.shape.length === 2;
      const shape = transposed ? [info.shape[1] ?? 0, info.shape[0] ?? 0] : [...info.shape];
      return { name, meta, bytes: info.byteLength, quantize: q, shape, transposed };
    });

    const readValues = async (p: Planned): Promise<{ values: Float32Array; dtype: SourceDType }> => {
      const tensor = await input.read(p.name);
      const { values, dtype } = widenInput(toQuantizeInput(tensor, p.name), `quantizeCheckpoint ${p.name}`);
      return { values: p.transposed ? transpose2d(values, p.meta.shape) : values, dtype };
    };

    // The JSON state must be sized before writing starts; with double quantization it holds
    // the absmax mean, so compute it (and keep the few nested maxima) now.
    for (const p of plan) {
      if (!p.quantize) continue;
      const dtype = sourceDType(p.meta.dtype);
      const header = { quantType, blocksize, shape: p.shape, dtype, packed: new Uint8Array(0) };
      if (!doubleQuant) {
        p.json = quantStateJson({ ...header, doubleQuant: false, absmax: new Float32Array(0) });
        continue;
      }
      const { values } = await readValues(p);
      const nested = nestAbsmax(computeAbsmax(values, blocksize));
      p.nestedAbsmax = nested.nestedAbsmax;
      p.json = quantStateJson({ ...header, doubleQuant: true, ...nested });
    }

    const bytesTotal = plan.reduce((sum, p) => sum + p.bytes, 0);
    let done = 0;
    let bytesDone = 0;
    const report = (p: Planned) => {
      done += 1;
      bytesDone += p.bytes;
      options.onProgress?.({ tensor: p.name, index: done, total: plan.length, bytesDone, bytesTotal, quantized: p.quantize });
    };

    // The writer asks for tensors in its own order (by dtype, then name), so one weight's parts
    // are requested at different times; keep the last quantized weight and redo it if needed.
    let cached: { name: string; q: Quantized4bit } | undefined;
    const quantized = async (p: Planned): Promise<Quantized4bit> => {
      if (cached?.name === p.name) return cached.q;
      const { values, dtype } = await readValues(p);
      const q = quantize(values, { type: quantType, blocksize, doubleQuant, shape: p.shape, dtype });
      if (quantStateJson(q) !== p.json) {
        throw new PeftError('INPUT_CHANGED', `${p.name}: quantization differs from the first pass (did ${inDir} change while running?)`);
      }
      cached = { name: p.name, q };
      return q;
    };

    const sources: TensorSource[] = [];
    for (const p of plan) {
      if (!p.quantize) {
        sources.push({
          name: p.name,
          dtype: p.meta.dtype,
          shape: [...p.meta.shape],
          data: async () => {
            const bytes = await input.readBytes(p.name);
            report(p);
            return bytes;
          },
        });
        continue;
      }
      sources.push(...quantizedSources(p, quantType, blocksize, doubleQuant, quantized, report));
    }

    const result = await writeDirAtomically(outDir, options.overwrite ?? false, async (dir) => {
      const written = await writeCheckpoint(
        dir,
        sources,
        options.maxShardBytes === undefined ? {} : { maxShardBytes: options.maxShardBytes },
      );
      await writeFile(join(dir, 'config.json'), configText);
      const copied: string[] = [];
      for (const entry of await readdir(inDir, { withFileTypes: true })) {
        if (!entry.isFile() || entry.name === 'config.json' || entry.name.startsWith('.') || NOT_COPIED.test(entry.name)) continue;
        await copyFile(join(inDir, entry.name), join(dir, entry.name));
        copied.push(entry.name);
      }
      return { files: written.files.map((f) => join(outDir, basename(f))), copied };
    });
    return {
      outDir,
      files: result.files,
      quantized: plan.filter((p) => p.quantize).map((p) => p.name),
      kept: plan.filter((p) => !p.quantize).map((p) => p.name),
      copied: result.copied,
    };
  } finally {
    await input.close();
  }
}

function quantizedSources(
  p: Planned,
  quantType: QuantType,
  blocksize: number,
  doubleQuant: boolean,
  quantized: (p: Planned) => Promise<Quantized4bit>,
  report: (p: Planned) => void,
): TensorSource[] {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const blocks = Math.ceil(n / blocksize);
  const json = new TextEncoder().encode(p.json ?? '');
  const key = p.name;
  const out: TensorSource[] = [
    {
      name: key,
      dtype: 'U8',
      shape: [(n + 1) >> 1, 1],
      data: async () => {
        const q = await quantized(p);
        report(p);
        return q.packed;
      },
    },
    {
      name: `${key}.absmax`,
      dtype: doubleQuant ? 'U8' : 'F32',
      shape: [blocks],
      data: async () => {
        const q = await quantized(p);
        return q.doubleQuant ? q.qabsmax : q.absmax;
      },
    },
    { name: `${key}.quant_map`, dtype: 'F32', shape: [16], data: quantMapTable(quantType).slice() },
  ];
  if (doubleQuant) {
    const nested = p.nestedAbsmax ?? new Float32Array(0);
    out.push({ name: `${key}.nested_absmax`, dtype: 'F32', shape: [nested.length], data: nested });
    out.push({ name: `${key}.nested_quant_map`, dtype: 'F32', shape: [256], data: DYNAMIC_MAP_SIGNED.slice() });
  }
  out.push({ name: quantStateKey(key, quantType), dtype: 'U8', shape: [json.byteLength], data: json });
  return out;
}

function toQuantizeInput(tensor: HostTensor, name: string): QuantizeInput {
  if (tensor.dtype === 'F32' && tensor.data instanceof Float32Array) return tensor.data;
  if ((tensor.dtype === 'F16' || tensor.dtype === 'BF16') && tensor.data instanceof Uint16Array) {
    return { words: tensor.data, dtype: tensor.dtype === 'F16' ? 'f16' : 'bf16' };
  }
  throw new DTypeError({ op: `quantizeCheckpoint ${name}`, expected: 'F32, F16 or BF16', got: tensor.dtype });
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
function transpose2d(values: Float32Array, shape: readonly number[]): Float32Array {
  const rows = shape[0] ?? 0;
  const cols = shape[1] ?? 0;
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c] ?? 0;
  }
  return out;
}

function sourceDType(dtype: string): SourceDType {
  return dtype === 'F16' ? 'float16' : dtype === 'BF16' ? 'bfloat16' : 'float32';
}
