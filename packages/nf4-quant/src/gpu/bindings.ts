// Binding a slice of a tensor at an offset the device accepts, for kernels that split work
// whose operands pass the binding-size limit.
import { DTYPE_BYTES, type BufferBinding, type Runtime, type Tensor } from '@peft-ts/tensor';

export interface Region {
  binding: BufferBinding;
  /** Element offset of the slice's first element inside the binding. */
  off: number;
}

/** Binds elements [start, start + count) of `t` from an aligned base; `off` locates `start` in it. */
export function region(rt: Runtime, t: Tensor, start: number, count: number): Region {
  const align = rt.gpu.info.limits.minStorageBufferOffsetAlignment;
  const eb = DTYPE_BYTES[t.dtype];
  const first = t.byteOffset + start * eb;
  const base = Math.floor(first / align) * align;
  const end = t.byteOffset + (start + count) * eb;
  const size = Math.max(4, Math.ceil((end - base) / 4) * 4);
  return { binding: { ...t.binding(), offset: base, size }, off: (first - base) / eb };
}

/** Largest binding to plan for: the device's, or less when asked (tests exercise splitting that way). */
export function bindingLimit(rt: Runtime, requested?: number): number {
  return Math.min(requested ?? Infinity, rt.maxBindingBytes);
}

export function offsetAlignment(rt: Runtime): number {
  return rt.gpu.info.limits.minStorageBufferOffsetAlignment;
}
