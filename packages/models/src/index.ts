// Public API of @peft-ts/models (runs in a browser; loading from a directory path is in
// `@peft-ts/models/node`).
export {
  parseModelConfig,
  loadModelConfigFrom,
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
  formatDecimalBytes,
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
export { DenseLinear, type Linear } from './modules/linear.js';
export { loadWeights, uploadWeight, transposeHost, type LinearLoadHook, type LinearLoadContext, type LoadProgress, type WeightLoadOptions, type WeightDType, type LoadedWeights } from './load/weights.js';
export { loadModelFrom, type LoadModelOptions } from './load/load-model.js';
export { CausalLM, type ForwardOptions, type ModelParts } from './model/causal-lm.js';
export { generate, greedy, type GenerateOptions, type GenerateResult, type FinishReason } from './generate/generate.js';
export { processLogits, selectToken, seededRandom, argmax, validateSampling, type SamplingOptions } from './generate/sampling.js';
