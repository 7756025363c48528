// Public API of @peft-ts/tensor.
export { getDevice, formatDeviceInfo, Gpu, DAWN_TOGGLES, OPTIONAL_FEATURES, waitQuietly } from './device/device.js';
export type { DeviceInfo, DeviceOptions, SubgroupMatrixConfig } from './device/device.js';

export { Runtime, type BufferBinding, type KernelTime, type PrecompileResult } from './core/runtime.js';
export { createRuntime, type RuntimeOptions } from './core/create-runtime.js';
export { DTYPE_BYTES, FLOAT_DTYPES, isFloat, storageBytes, type DType } from './core/dtype.js';
export { MEMORY_TAGS, sizeClass, type MemoryStats, type MemoryTag } from './core/memory.js';
export {
  Tensor,
  tidy,
  tidyAsync,
  noGrad,
  withGrad,
  isGradEnabled,
  numelOf,
  stridesOf,
  f16WordsToF32,
  bf16WordsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  type GradNode,
  type Shape,
  type TensorOptions,
  type HostArray,
} from './core/tensor.js';
export { empty, fromArray, full, zeros, ones, zerosLike, onesLike, scalar, fillInPlace, type HostData } from './core/create.js';
export { backward, backwardMany, checkpoint, detach, freeGraph, needsGrad, record, axpyInPlace, clone, tapeOrder, type BackwardOptions } from './core/autograd.js';
export { kernelKey, grid1d, uniforms, uniformDecl, storageDecls, GRID_HELPERS, type KernelSpec, type BindingKind, type UniformField } from './core/kernel.js';
export { wgslLoad, wgslStorageType, wgslValueType, WGSL_PACK_HELPERS } from './core/dtype.js';

// ---- ops ----
export { add, sub, mul, div } from './ops/binary/binary.js';
export { sumTo } from './ops/reduce/sum-to.js';
export { broadcastShapes, normalizeAxis } from './ops/shape-utils.js';
export * from './ops/matmul/index.js';
export * from './ops/elementwise/index.js';
export * from './ops/norm/index.js';
export * from './ops/attention/index.js';
export * from './ops/decode/index.js';
