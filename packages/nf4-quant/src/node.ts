// Node entry of @peft-ts/nf4-quant: everything the root entry has, plus checkpoint conversion and
// 4-bit model directories read and written by path.
import { basename, dirname } from 'node:path';
import { dirTree, type FileTree } from '@peft-ts/safetensors/node';
import { Bnb4bitCheckpoint as Bnb4bitCheckpointBase, loadBnb4bitFrom, type Bnb4bitModel } from './checkpoint/bnb4bit-checkpoint.js';
import { readConfigJsonFrom } from './checkpoint/config-json.js';

export * from './index.js';
export { quantizeCheckpoint } from './checkpoint/quantize-checkpoint.js';
export type { QuantizeCheckpointOptions, QuantizeCheckpointResult, QuantizeProgress } from './checkpoint/quantize-checkpoint.js';
export { writeBnb4bit } from './checkpoint/write-bnb4bit.js';
export type { WriteBnb4bitOptions } from './checkpoint/write-bnb4bit.js';

export class Bnb4bitCheckpoint extends Bnb4bitCheckpointBase {
  /** Opens a directory (config.json + model.safetensors or shards), or a FileTree, and checks its quantization_config. */
  static override open(dirOrTree: string | FileTree): Promise<Bnb4bitCheckpointBase> {
    return Bnb4bitCheckpointBase.open(typeof dirOrTree === 'string' ? dirTree(dirOrTree) : dirOrTree);
  }
}

/** Loads every tensor of a bitsandbytes 4-bit checkpoint directory without dequantizing. */
export function loadBnb4bit(dir: string): Promise<Bnb4bitModel> {
  return loadBnb4bitFrom(dirTree(dir));
}

/** Reads a config.json file into plain values, remembering its number tokens for writing it back. */
export function readConfigJson(path: string): Promise<Record<string, unknown>> {
  return readConfigJsonFrom(dirTree(dirname(path)), basename(path));
}
