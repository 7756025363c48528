// Guards that every tensor a kernel binds fits one storage binding, so an oversized tensor fails
// with a message naming the op instead of a device validation error at the next sync.
import { UnsupportedError } from '@peft-ts/errors';
import { storageBytes, type DType } from '../../../core/dtype.js';
import type { Runtime } from '../../../core/runtime.js';
import { numelOf, type Shape, type Tensor } from '../../../core/tensor.js';

/** Throws UnsupportedError when a tensor (or a planned output `{shape, dtype}`) exceeds rt.maxBindingBytes. */
export function checkBindable(op: string, rt: Runtime, ...items: (Tensor | { shape: Shape; dtype: DType } | null | undefined)[]): void {
  const max = rt.maxBindingBytes;
  for (const item of items) {
    if (!item) continue;
    const bytes = storageBytes(item.dtype, numelOf(item.shape));
    if (bytes > max) {
      throw new UnsupportedError({
        what: 'tensor size for one storage binding',
        got: `[${item.shape.join(', ')}] ${item.dtype} = ${bytes} bytes, the device binds at most ${max}`,
        where: op,
      });
    }
  }
}
