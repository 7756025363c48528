// Writing a bitsandbytes 4-bit model directory on disk (Node only: served by @peft-ts/nf4-quant/node).
import { copyFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeCheckpoint, writeDirAtomically } from '@peft-ts/safetensors/node';
import { bnb4bitTensorSources, type Bnb4bitModel } from './bnb4bit-checkpoint.js';
import { quantizedConfigText } from './config-json.js';

export interface WriteBnb4bitOptions {
  /** Largest shard in bytes (default: @peft-ts/safetensors' 5e9, transformers' default). */
  maxShardBytes?: number;
  /** Replace an existing output directory (default false). */
  overwrite?: boolean;
  /** Files copied into the output directory as they are (e.g. tokenizer.json, generation_config.json). */
  copyFiles?: readonly string[];
}

/**
 * Writes a 4-bit model directory atomically: config.json with `quantization_config` and the
 * state dict in bitsandbytes' layout, sharded past `maxShardBytes`.
 */
export async function writeBnb4bit(outDir: string, model: Bnb4bitModel, options: WriteBnb4bitOptions = {}): Promise<{ files: string[] }> {
  const configText = quantizedConfigText(model.config, model.quantizationConfig, join(outDir, 'config.json'));
  return writeDirAtomically(outDir, options.overwrite ?? false, async (dir) => {
    const sources = bnb4bitTensorSources(model);
    const written = await writeCheckpoint(dir, sources, options.maxShardBytes === undefined ? {} : { maxShardBytes: options.maxShardBytes });
    await writeFile(join(dir, 'config.json'), configText);
    for (const file of options.copyFiles ?? []) await copyFile(file, join(dir, basename(file)));
    return { files: written.files.map((f) => join(outDir, basename(f))) };
  });
}
