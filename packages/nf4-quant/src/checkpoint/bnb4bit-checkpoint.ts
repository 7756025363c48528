// Reading and writing models in the layout transformers saves bitsandbytes 4-bit models in:
// config.json with `quantization_config`, and a state dict holding each linear weight as
// packed bytes plus its quant-state tensors. Nothing is dequantized.
import { FormatError } from '@peft-ts/errors';
import { Checkpoint, type FileTree, type HostTensor, type TensorInfo, type TensorSource } from '@peft-ts/safetensors';
import type { Quantized4bit } from '../quantize/types.js';
import {
  parseQuantStateKey,
  QUANT_STATE_SUFFIXES,
  quantizedTensorSources,
  readQuantized4bit,
} from '../serialize/quant-state.js';
import { parseQuantizationConfig, type BnbQuantizationConfig } from '../serialize/quantization-config.js';
import { readConfigJsonFrom } from './config-json.js';

/** An open bitsandbytes 4-bit checkpoint (a directory or any FileTree); tensors are read on demand. */
export class Bnb4bitCheckpoint {
  /** The tree's name: the directory path when opened from disk. */
  readonly dir: string;
  /** config.json, parsed. */
  readonly config: Record<string, unknown>;
  /** Its `quantization_config`. */
  readonly quantizationConfig: BnbQuantizationConfig;
  readonly #checkpoint: Checkpoint;
  readonly #quantized: string[];
  readonly #quantizedSet: ReadonlySet<string>;
  readonly #plain: string[];

  protected constructor(dir: string, config: Record<string, unknown>, q: BnbQuantizationConfig, checkpoint: Checkpoint) {
    this.dir = dir;
    this.config = config;
    this.quantizationConfig = q;
    this.#checkpoint = checkpoint;
    const names = checkpoint.names();
    const quantized = new Set<string>();
    for (const name of names) {
      const parsed = parseQuantStateKey(name);
      if (parsed) quantized.add(parsed.weightKey);
    }
    const parts = new Set<string>();
    for (const key of quantized) {
      parts.add(key);
      for (const suffix of QUANT_STATE_SUFFIXES) parts.add(`${key}.${suffix}`);
    }
    this.#quantized = names.filter((n) => quantized.has(n));
    this.#quantizedSet = new Set(this.#quantized);
    this.#plain = names.filter((n) => !parts.has(n) && !parseQuantStateKey(n));
    // A state key whose weight is missing is caught here, not on first read.
    for (const key of quantized) {
      if (!checkpoint.has(key)) {
        throw new FormatError({
          file: checkpoint.indexFile ?? checkpoint.files[0] ?? dir,
          field: key,
          expected: 'the packed weight its quant state belongs to',
          got: 'no such tensor',
        });
      }
    }
  }

  /** Opens a tree (config.json + model.safetensors or shards) and checks its quantization_config. */
  static async open(tree: FileTree): Promise<Bnb4bitCheckpoint> {
    const config = await readConfigJsonFrom(tree);
    const q = parseQuantizationConfig(config, `${tree.name}/config.json`);
    const checkpoint = await Checkpoint.open(tree);
    try {
      return new Bnb4bitCheckpoint(tree.name, config, q, checkpoint);
    } catch (error) {
      await checkpoint.close();
      throw error;
    }
  }

  /** Keys of the quantized weights (`...q_proj.weight`), in file order. */
  quantizedNames(): string[] {
    return [...this.#quantized];
  }

  /** Keys of the tensors stored unquantized (norms, embeddings, lm_head, biases). */
  tensorNames(): string[] {
    return [...this.#plain];
  }

  isQuantized(name: string): boolean {
    return this.#quantizedSet.has(name);
  }

  info(name: string): TensorInfo & { file: string } {
    return this.#checkpoint.info(name);
  }

  /** The quantized state of one weight, checked against its JSON state. */
  async readQuantized(name: string): Promise<Quantized4bit> {
    if (!this.isQuantized(name)) {
      throw new FormatError({
        file: this.#checkpoint.indexFile ?? this.#checkpoint.files[0] ?? this.dir,
        field: name,
        expected: 'a quantized weight (one with a quant_state tensor)',
        got: this.#checkpoint.has(name) ? 'an unquantized tensor' : 'no such tensor',
      });
    }
    return readQuantized4bit(this.#checkpoint, name);
  }

  /** An unquantized tensor. */
  read(name: string): Promise<HostTensor> {
    return this.#checkpoint.read(name);
  }

  close(): Promise<void> {
    return this.#checkpoint.close();
  }
}

/** A whole 4-bit model in memory: quantized weights plus the tensors kept in their dtype. */
export interface Bnb4bitModel {
  config: Record<string, unknown>;
  quantizationConfig: BnbQuantizationConfig;
  quantized: Map<string, Quantized4bit>;
  tensors: Map<string, HostTensor>;
}

/** Loads every tensor of a bitsandbytes 4-bit checkpoint tree without dequantizing. */
export async function loadBnb4bitFrom(tree: FileTree): Promise<Bnb4bitModel> {
  const ckpt = await Bnb4bitCheckpoint.open(tree);
  try {
    const quantized = new Map<string, Quantized4bit>();
    for (const name of ckpt.quantizedNames()) quantized.set(name, await ckpt.readQuantized(name));
    const tensors = new Map<string, HostTensor>();
    for (const name of ckpt.tensorNames()) tensors.set(name, await ckpt.read(name));
    return { config: ckpt.config, quantizationConfig: ckpt.quantizationConfig, quantized, tensors };
  } finally {
    await ckpt.close();
  }
}

/** The tensors of a 4-bit model in bitsandbytes' state-dict layout, for a safetensors writer. */
export function bnb4bitTensorSources(model: Bnb4bitModel): TensorSource[] {
  const sources: TensorSource[] = [];
  for (const [name, q] of model.quantized) sources.push(...quantizedTensorSources(name, q));
  for (const [name, t] of model.tensors) sources.push({ name, dtype: t.dtype, shape: t.shape, data: t.data });
  return sources;
}
