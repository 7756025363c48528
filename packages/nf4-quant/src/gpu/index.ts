// Public API of @peft-ts/nf4-quant/gpu: 4-bit quantization, dequantization and a fused 4-bit
// linear layer on @peft-ts/tensor's WebGPU runtime, plus load hooks for @peft-ts/models.
export { quantize4bitGpu, dequantize4bitGpu } from './quantize.js';
export type { QuantizeGpuOptions, DequantizeGpuOptions } from './quantize.js';
export {
  uploadQuantized4bit,
  downloadQuantized4bit,
  disposeQuantized4bit,
  quantizedDeviceBytes,
  quantizedNumel,
} from './quantized-tensor.js';
export type {
  Quantized4bitTensor,
  PlainQuantized4bitTensor,
  DoubleQuantized4bitTensor,
  UploadOptions,
} from './quantized-tensor.js';
export { linear4bit, Linear4bit } from './linear-4bit.js';
export type { Linear4bitOptions, LinearModule } from './linear-4bit.js';
export { nf4LinearHook, bnb4bitLinearHook } from './load-hooks.js';
export type { LinearHookContext, Linear4bitHook, Nf4LinearHookOptions, Bnb4bitLinearHookOptions } from './load-hooks.js';
