// From a Hugging Face model directory to a CausalLM on the GPU.
import { Checkpoint } from '@peft-ts/safetensors/node';
import type { Runtime } from '@peft-ts/tensor';
import { loadModelConfig, type ModelConfig } from '../config/config.js';
import { CausalLM } from '../model/causal-lm.js';
import { loadWeights, type WeightLoadOptions } from './weights.js';

export interface LoadModelOptions extends WeightLoadOptions {
  /** Use this config instead of reading `<dir>/config.json`. */
  config?: ModelConfig;
}

/**
 * Loads `config.json` and the safetensors weights (single file or sharded with an index) of a
 * model directory. Weights stream tensor by tensor; a `linearHook` may replace each linear layer
 * as its weight arrives (e.g. quantize it to 4 bits).
 */
export async function loadModel(rt: Runtime, dir: string, options: LoadModelOptions = {}): Promise<CausalLM> {
  const config = options.config ?? (await loadModelConfig(dir));
  const ckpt = await Checkpoint.open(dir);
  try {
    const weights = await loadWeights(rt, config, ckpt, dir, options);
    return new CausalLM(rt, { config, ...weights });
  } finally {
    await ckpt.close();
  }
}
