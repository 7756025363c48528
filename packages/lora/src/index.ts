// Public API of @peft-ts/lora (runs in a browser; saving and loading adapter directories by path
// is on the LoraModel of `@peft-ts/lora/node`).
export {
  resolveLoraConfig,
  selectTargetModules,
  moduleHyperparameters,
  patternValue,
  adapterConfigJson,
  LORA_DEFAULTS,
  DEFAULT_TARGETS,
  type LoraConfig,
  type LoraBias,
  type InitLoraWeights,
} from './config/lora-config.js';
export { LoraLinear, type LoraWeights } from './layer/lora-linear.js';
export { LoraModel, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type AdapterFiles, type AddAdapterOptions, type SaveAdapterOptions } from './model/lora-model.js';
