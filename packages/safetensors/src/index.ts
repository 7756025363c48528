// Public API of @peft-ts/safetensors: read, validate and write .safetensors files and sharded
// checkpoints from any ByteSource/FileTree, plus bf16/f16 <-> f32 conversions. Runs in a browser;
// paths and the file system are in `@peft-ts/safetensors/node`.
export { DTYPE_SIZE, DTYPES, isDType } from './format/dtype.js';
export type { DType, HostTensor, HostTensorData } from './format/dtype.js';
export { MAX_HEADER_BYTES, parseSafetensorsHeader } from './format/header.js';
export type { ParsedHeader, TensorInfo } from './format/header.js';
export { SafetensorsFile } from './read/safetensors-file.js';
export { Checkpoint } from './read/checkpoint.js';
export type { CheckpointOpenOptions } from './read/checkpoint.js';
export { blobSource, bytesSource, memoryTree, readBytes, readJson, readText } from './io/byte-source.js';
export type { ByteSource, FileTree, MemoryTree, WritableTree } from './io/byte-source.js';
export type { TensorData, TensorSource } from './write/tensor-source.js';
export { serializeSafetensors, writeSafetensorsTo } from './write/write-safetensors.js';
export type { WriteOptions } from './write/write-safetensors.js';
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
