// Node entry of @peft-ts/models: everything the main entry has, plus loading a model or its
// config from a directory path.
import { dirTree } from '@peft-ts/safetensors/node';
import type { Runtime } from '@peft-ts/tensor';
import { loadModelConfigFrom, type ModelConfig } from './config/config.js';
import { loadModelFrom, type LoadModelOptions } from './load/load-model.js';
import type { CausalLM } from './model/causal-lm.js';

export * from './index.js';

/** Reads and parses `<dir>/config.json`. */
export function loadModelConfig(dir: string): Promise<ModelConfig> {
  return loadModelConfigFrom(dirTree(dir));
}

/**
 * Loads `config.json` and the safetensors weights (single file or sharded with an index) of a
 * model directory; see loadModelFrom.
 */
export function loadModel(rt: Runtime, dir: string, options: LoadModelOptions = {}): Promise<CausalLM> {
  return loadModelFrom(rt, dirTree(dir), options);
}
