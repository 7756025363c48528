// Public API of @peft-ts/safetensors: read, validate and write .safetensors files and sharded
// checkpoints, plus bf16/f16 <-> f32 conversions.
export { DTYPE_SIZE, DTYPES, isDType } from './format/dtype.js';
export type { DType, HostTensor, HostTensorData } from './format/dtype.js';
export { MAX_HEADER_BYTES, parseSafetensorsHeader } from './format/header.js';
export type { ParsedHeader, TensorInfo } from './format/header.js';
export { SafetensorsFile } from './read/safetensors-file.js';
export type { OpenOptions } from './read/safetensors-file.js';
export { Checkpoint } from './read/checkpoint.js';
export type { TensorData, TensorSource } from './write/tensor-source.js';
export { serializeSafetensors, writeSafetensors } from './write/write-safetensors.js';
export type { WriteOptions } from './write/write-safetensors.js';
export { DEFAULT_MAX_SHARD_BYTES, writeCheckpoint } from './write/write-checkpoint.js';
export type { WriteCheckpointOptions, WrittenCheckpoint } from './write/write-checkpoint.js';
export {
  bf16ToF32,
  bf16ToF32Scalar,
  f16ToF32,
  f16ToF32Scalar,
  f32ToBf16,
  f32ToBf16Scalar,
  f32ToF16,
  f32ToF16Scalar,
} from './convert/half-float.js';
export { writeDirAtomically, checkOutputDir } from './write/atomic-dir.js';
