// Public API of @peft-ts/models.
export {
  parseModelConfig,
  loadModelConfig,
  SUPPORTED_MODEL_TYPES,
  SUPPORTED_ROPE_TYPES,
  type Architecture,
  type ModelConfig,
  type RopeConfig,
  type RopeType,
  type Activation,
} from './config/config.js';
export { modelLayout, type LinearLayout, type TensorLayout, type ModelLayout } from './config/layout.js';
export {
  estimateMemory,
  countParameters,
  selectTargets,
  nf4Bytes,
  namedConfig,
  NAMED_SIZES,
  type EstimateOptions,
  type MemoryEstimate,
  type ParameterCount,
  type FinetuneMethod,
  type OptimizerKind,
} from './estimate/estimate.js';
