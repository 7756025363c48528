// Public API of @peft-ts/gguf: lay out, serialize and read GGUF v3 files (from any ByteSource),
// and encode tensors as ggml types. Runs in a browser; paths are in `@peft-ts/gguf/node`.
export { GGUF_MAGIC, GGUF_VERSION, GGUF_DEFAULT_ALIGNMENT, GgufValueType, GgmlType, GGML_TYPE_NAMES, GGML_BLOCK, ggmlTensorBytes, type GgmlTypeName } from './format/constants.js';
export { gguf, plainValue, type GgufValue, type GgufMetadata, type GgufScalarType } from './format/value.js';
export { encodeTensor, decodeTensor } from './format/encode.js';
export { ggufHeader, serializeGguf, type GgufTensorSource, type WriteGgufResult } from './write/write-gguf.js';
export { readGgufInfoFrom, readGgufTensorFrom, type GgufFileInfo, type GgufTensorInfo } from './read/read-gguf.js';
