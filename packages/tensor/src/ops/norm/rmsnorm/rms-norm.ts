// rmsNorm: RMS normalisation over the last dim exactly as Llama-family models compute it, with
// its gradients for x and the weight.
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { isFloat } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { checkBindable } from '../common/bindable.js';
import { rowWorkgroupSize } from '../common/wgsl.js';
import { normWeightGrads } from '../common/weight-grad.js';
import { rmsNormBackwardSpec, rmsNormForwardSpec } from './rms-norm.kernel.js';

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Checks x [..., D] and an optional weight [D]; returns rows and D. */
export function checkNormArgs(op: string, x: Tensor, params: readonly [string, Tensor | null][]): { rows: number; cols: number } {
  if (!isFloat(x.dtype)) throw new DTypeError({ op, expected: 'x of f32 | f16 | bf16', got: x.dtype });
  if (x.ndim === 0) throw new ShapeMismatchError({ op, expected: 'x with at least one dim', got: x.shape });
  const cols = x.shape[x.ndim - 1] ?? 1;
  for (const [name, p] of params) {
    if (!p) continue;
    if (!isFloat(p.dtype)) throw new DTypeError({ op, expected: `${name} of f32 | f16 | bf16`, got: p.dtype });
    if (p.ndim !== 1 || p.shape[0] !== cols) {
      throw new ShapeMismatchError({ op, expected: `${name} [${cols}] (the last dim of x ${fmt(x.shape)})`, got: p.shape });
    }
  }
  if (cols === 0) throw new ShapeMismatchError({ op, expected: 'a non-empty last dim', got: x.shape });
  checkBindable(op, x.rt, x, { shape: x.shape, dtype: 'f32' }, ...params.map(([, p]) => p));
  return { rows: x.numel / cols, cols };
}

/**
 * RMSNorm over the last dim: variance = mean(x^2) in f32, h = x * rsqrt(variance + eps) rounded
 * to x's dtype, y = weight * h. x and weight may be f32/f16/bf16 storage; y is f32. `weight` null
 * means no affine scale. Gradients for x and for weight (summed over rows) when they require grad.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const { rows, cols } = checkNormArgs('rmsNorm', x, [['weight', weight]]);
  const rt = x.rt;
  const lanes = rowWorkgroupSize(cols);
  const grad = needsGrad(x, weight);
  const y = empty(rt, x.shape, 'f32');
  const rstd = grad ? empty(rt, [rows], 'f32') : null;
  const bindings = [x.binding()];
  if (weight) bindings.push(weight.binding());
  bindings.push(y.binding());
  if (rstd) bindings.push(rstd.binding());
  rt.dispatch(rmsNormForwardSpec(x.dtype, weight?.dtype ?? null, rstd !== null, lanes), bindings, [rows, cols, eps], grid1d(rows, 1));
  if (!rstd) return y;
  const needX = x.requiresGrad;
  const needW = weight?.requiresGrad ?? false;
  const saved = weight ? [x, rstd, weight] : [x, rstd];
  record(y, 'rmsNorm', [x, weight], saved, (g, s) =>
    noGrad(() => {
      const [sx, sr, sw] = s as [Tensor, Tensor, Tensor | undefined];
      let dx: Tensor | null = null;
      if (needX) {
        dx = empty(rt, x.shape, 'f32');
        const b = [g.binding(), sx.binding(), sr.binding()];
        if (sw) b.push(sw.binding());
        b.push(dx.binding());
        rt.dispatch(rmsNormBackwardSpec(sx.dtype, sw?.dtype ?? null, lanes), b, [rows, cols], grid1d(rows, 1));
      }
      const { dw } = normWeightGrads('rms', g, sx, sr, rows, cols, needW, false);
      return [dx, dw];
    }),
  );
  rstd.dispose();
  return y;
}
