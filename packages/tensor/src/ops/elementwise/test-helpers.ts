// Helpers shared by this family's tests: a smaller per-binding limit (to reach the chunked
// dispatch path with small tensors) and a checked read of a tensor's gradient.
import type { Runtime } from '../../core/runtime.js';
import type { Tensor } from '../../core/tensor.js';

/** Runs fn with `rt.maxBindingBytes` lowered to `bytes`, then restores the device's limit. */
export async function withBindingLimit<T>(rt: Runtime, bytes: number, fn: () => Promise<T>): Promise<T> {
  Object.defineProperty(rt, 'maxBindingBytes', { value: bytes, configurable: true });
  try {
    return await fn();
  } finally {
    Reflect.deleteProperty(rt, 'maxBindingBytes');
  }
}

/** The gradient of `t`, or an error saying it has none. */
export function gradOf(t: Tensor): Tensor {
  if (!t.grad) throw new Error(`${t.toString()} has no gradient`);
  return t.grad;
}
