// From a Hugging Face model tree (a directory, files a page picked, memory) to a CausalLM on the GPU.
import { Checkpoint, type FileTree } from '@peft-ts/safetensors';
import type { Runtime } from '@peft-ts/tensor';
import { loadModelConfigFrom, type ModelConfig } from '../config/config.js';
import { CausalLM } from '../model/causal-lm.js';
import { loadWeights, type WeightLoadOptions } from './weights.js';

export interface LoadModelOptions extends WeightLoadOptions {
  /** Use this config instead of reading `config.json` from the tree. */
  config?: ModelConfig;
}

/**
 * Loads `config.json` and the safetensors weights (single file or sharded with an index) of a
 * model tree. Weights stream tensor by tensor; a `linearHook` may replace each linear layer as
 * its weight arrives (e.g. quantize it to 4 bits). `loadModel(rt, dir)` in
 * `@peft-ts/models/node` does the same for a directory path.
 */
export async function loadModelFrom(rt: Runtime, tree: FileTree, options: LoadModelOptions = {}): Promise<CausalLM> {
  const config = options.config ?? (await loadModelConfigFrom(tree));
  const ckpt = await Checkpoint.open(tree);
  try {
    const weights = await loadWeights(rt, config, ckpt, tree.name, options);
    return new CausalLM(rt, { config, ...weights });
  } finally {
    await ckpt.close();
  }
}
