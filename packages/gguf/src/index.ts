// Public API of @peft-ts/gguf: write and read GGUF v3 files, and encode tensors as ggml types.
export { GGUF_MAGIC, GGUF_VERSION, GGUF_DEFAULT_ALIGNMENT, GgufValueType, GgmlType, GGML_TYPE_NAMES, GGML_BLOCK, ggmlTensorBytes, type GgmlTypeName } from './format/constants.js';
export { gguf, plainValue, type GgufValue, type GgufMetadata, type GgufScalarType } from './format/value.js';
export { encodeTensor, decodeTensor } from './format/encode.js';
export { writeGguf, ggufHeader, type GgufTensorSource, type WriteGgufResult } from './write/write-gguf.js';
export { readGgufInfo, readGgufTensor, type GgufFileInfo, type GgufTensorInfo } from './read/read-gguf.js';
