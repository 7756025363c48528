// Public API of @peft-ts/lora.
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
export { LoraModel, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type AddAdapterOptions, type SaveAdapterOptions } from './model/lora-model.js';
