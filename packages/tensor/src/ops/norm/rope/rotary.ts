// rotary: applies rotary position embeddings (rotate_half convention, optional partial rotary
// dims) to q or k, with positions given per token; its gradient is the transposed rotation.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { isFloat } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { checkBindable } from '../common/bindable.js';
import { rotarySpec, type RotaryLayout } from './rotary.kernel.js';

export type { RotaryLayout } from './rotary.kernel.js';

export interface RotaryOptions {
  /** 'bthd' (default): x is [B, T, H, D]; 'bhtd': x is [B, H, T, D]. */
  layout?: RotaryLayout;
}

// A quiet NaN goes in as bits: WGSL rejects NaN constants.
const NAN_BITS = 0x7fc00000;

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function run(x: Tensor, positionIds: Tensor, cos: Tensor, sin: Tensor, layout: RotaryLayout, transpose: boolean): Tensor {
  const [B = 1, d1 = 1, d2 = 1, D = 1] = x.shape;
  const [H, T] = layout === 'bthd' ? [d2, d1] : [d1, d2];
  const out = empty(x.rt, x.shape, 'f32');
  const posBatchStride = positionIds.ndim === 2 && positionIds.shape[0] === B && B > 1 ? T : 0;
  const uniforms = [x.numel, D, cos.shape[1] ?? 0, H, T, posBatchStride, cos.shape[0] ?? 0, NAN_BITS];
  x.rt.dispatch(rotarySpec(x.dtype, cos.dtype, layout, transpose), [x.binding(), positionIds.binding(), cos.binding(), sin.binding(), out.binding()], uniforms, grid1d(x.numel, 256));
  return out;
}

/**
 * q_embed = q * cos + rotate_half(q) * sin over the first rotaryDim dims of each head
 * (rotaryDim = the tables' width; the remaining dims pass through), with cos/sin rows picked by
 * `positionIds` (i32 [B, T], [1, T] or [T]: packed sequences and left padding take any ids).
 * `table` comes from ropeTable(). x may be f32/f16/bf16; the result is f32. Position ids outside
 * the table yield NaN rows rather than reading out of bounds.
 */
export function rotary(x: Tensor, positionIds: Tensor, table: { cos: Tensor; sin: Tensor }, options: RotaryOptions = {}): Tensor {
  const layout = options.layout ?? 'bthd';
  const { cos, sin } = table;
  if (!isFloat(x.dtype)) throw new DTypeError({ op: 'rotary', expected: 'x of f32 | f16 | bf16', got: x.dtype });
  if (positionIds.dtype !== 'i32') throw new DTypeError({ op: 'rotary', expected: 'positionIds of i32', got: positionIds.dtype });
  if (!isFloat(cos.dtype) || cos.dtype !== sin.dtype) throw new DTypeError({ op: 'rotary', expected: 'cos and sin of one float dtype', got: `${cos.dtype}, ${sin.dtype}` });
  const axes = layout === 'bthd' ? '[B, T, H, D]' : '[B, H, T, D]';
  if (x.ndim !== 4) throw new ShapeMismatchError({ op: 'rotary', expected: `x ${axes}`, got: x.shape });
  const [B = 1, d1 = 1, d2 = 1, D = 1] = x.shape;
  const T = layout === 'bthd' ? d1 : d2;
  const posOk =
    (positionIds.ndim === 2 && (positionIds.shape[0] === B || positionIds.shape[0] === 1) && positionIds.shape[1] === T) ||
    (positionIds.ndim === 1 && positionIds.shape[0] === T);
  if (!posOk) throw new ShapeMismatchError({ op: 'rotary', expected: `positionIds [${B}, ${T}], [1, ${T}] or [${T}] for x ${fmt(x.shape)} (${axes})`, got: positionIds.shape });
  const R = cos.shape[1] ?? 0;
  if (cos.ndim !== 2 || sin.ndim !== 2 || cos.shape[0] !== sin.shape[0] || sin.shape[1] !== R || R % 2 !== 0 || R === 0 || R > D) {
    throw new ShapeMismatchError({ op: 'rotary', expected: `cos and sin [positions, rotaryDim] with an even rotaryDim <= ${D} (head dim of x ${fmt(x.shape)})`, got: `${fmt(cos.shape)}, ${fmt(sin.shape)}` });
  }
  checkBindable('rotary', x.rt, x, { shape: x.shape, dtype: 'f32' }, positionIds, cos, sin);
  const out = run(x, positionIds, cos, sin, layout, false);
  return record(out, 'rotary', [x], [positionIds, cos, sin], (g, s) => {
    const [p, c, sn] = s as [Tensor, Tensor, Tensor];
    return [noGrad(() => run(g, p, c, sn, layout, true))];
  });
}
