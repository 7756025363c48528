// cast: converts between f32, f16 and bf16 storage with round-to-nearest-even, bit-exact with
// the host conversions; the gradient passes straight through (gradients stay f32).
import { DTypeError } from '@peft-ts/errors';
import { clone, record } from '../../../core/autograd.js';
import { FLOAT_DTYPES, type DType } from '../../../core/dtype.js';
import { stridesOf, type Tensor } from '../../../core/tensor.js';
import { stridedCopy, viewOf } from '../shape/copy.js';

/**
 * x converted to `dtype` (f32 <-> f16 <-> bf16). f32 -> f16 rounds to nearest even, overflows
 * to Inf and keeps subnormals; -> bf16 rounds to nearest even; NaN stays NaN. Same dtype: a copy.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (!FLOAT_DTYPES.includes(x.dtype) || !FLOAT_DTYPES.includes(dtype)) {
    throw new DTypeError({ op: 'cast', expected: `f32 | f16 | bf16 to f32 | f16 | bf16`, got: `${x.dtype} to ${dtype}` });
  }
  const out = dtype === x.dtype ? clone(x, 'activations') : stridedCopy('cast', x, x.shape, 0, stridesOf(x.shape), dtype);
  return record(out, 'cast', [x], [], (g) => [viewOf(g, g.shape)]);
}
