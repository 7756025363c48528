// Public API of @peft-ts/nf4-quant: bitsandbytes-exact NF4/FP4 quantization in plain
// TypeScript, its serialized layout, 4-bit checkpoints read from any FileTree, and error
// statistics. Runs anywhere; checkpoint conversion and paths are in `@peft-ts/nf4-quant/node`.
export { DYNAMIC_MAP_SIGNED, DYNAMIC_MAP_UNSIGNED } from './codes/dynamic-map.js';
export { FP4_CODE, FP4_QUANT_MAP, NF4_CODE, NF4_THRESHOLDS, QUANT_TYPES, fp4Index, nf4Index } from './codes/four-bit-codes.js';
export type { QuantType } from './codes/four-bit-codes.js';

export type {
  DoubleQuantized4bit,
  HalfWords,
  PlainQuantized4bit,
  Quantized4bit,
  QuantizeInput,
  SourceDType,
} from './quantize/types.js';
export { BLOCKSIZES, NESTED_BLOCKSIZE, computeAbsmax, nestAbsmax, quantize } from './quantize/quantize-4bit.js';
export type { NestedAbsmax, QuantizeOptions } from './quantize/quantize-4bit.js';
export { blockAbsmax, dequantize, numel } from './quantize/dequantize-4bit.js';
export type { DequantizeOptions } from './quantize/dequantize-4bit.js';
export { absmaxMean } from './quantize/absmax-mean.js';
export { dequantizeBlockwise8, dynamicIndex, quantizeBlockwise8 } from './quantize/blockwise-8bit.js';
export type { Blockwise8bit } from './quantize/blockwise-8bit.js';
export { quantizedBytes } from './quantize/quantized-bytes.js';
export type { QuantizedBytes, QuantizedBytesOptions } from './quantize/quantized-bytes.js';

export { errorStats } from './stats/error-stats.js';
export type { ErrorStats } from './stats/error-stats.js';
export { dequantizeInt4Absmax, quantizeInt4Absmax } from './stats/int4-absmax.js';
export type { Int4Absmax } from './stats/int4-absmax.js';
export { compareQuantizers } from './stats/compare.js';
export type { QuantizerComparison } from './stats/compare.js';

export { JsonNumber, PyFloat, parseJsonDocument, pyFloatRepr, pyJsonDumps, toPlain } from './serialize/py-json.js';
export type { PyJsonDumpOptions, PyJsonObject, PyJsonValue } from './serialize/py-json.js';
export {
  QUANT_STATE_SUFFIXES,
  parseQuantStateJson,
  parseQuantStateKey,
  quantStateJson,
  quantStateKey,
  quantizedTensorSources,
  readQuantized4bit,
} from './serialize/quant-state.js';
export type { QuantStateHeader, TensorReader } from './serialize/quant-state.js';
export {
  defaultQuantizationConfig,
  parseQuantizationConfig,
  quantizationConfigJson,
} from './serialize/quantization-config.js';
export type { BnbQuantizationConfig, QuantStorage } from './serialize/quantization-config.js';

export { Bnb4bitCheckpoint, bnb4bitTensorSources, loadBnb4bitFrom } from './checkpoint/bnb4bit-checkpoint.js';
export type { Bnb4bitModel } from './checkpoint/bnb4bit-checkpoint.js';
export { CONV1D_MODEL_TYPES, isQuantizableWeight, matchesModule, modulePath } from './checkpoint/select-weights.js';
export type { TensorMeta } from './checkpoint/select-weights.js';
export { parseConfigJson, quantizedConfigText, readConfigJsonFrom } from './checkpoint/config-json.js';
