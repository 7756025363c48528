// What the writers take: a tensor's name, dtype and shape up front, its bytes now or later.
import type { DType } from '../format/dtype.js';

/** Bytes of one tensor, or a function that produces them when the writer reaches the tensor. */
export type TensorData = Uint8Array | ArrayBufferView;

/**
 * A tensor to write. `data` is raw little-endian bytes (any ArrayBufferView), or the typed array
 * `HostTensor` uses for the dtype, or a function called once, when the tensor is written, so
 * that a checkpoint never has to sit in memory whole.
 */
export interface TensorSource {
  name: string;
  dtype: DType;
  shape: number[];
  data: TensorData | (() => Promise<TensorData> | TensorData);
}
