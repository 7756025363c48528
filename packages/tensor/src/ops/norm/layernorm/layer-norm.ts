// layerNorm: LayerNorm over the last dim as torch.nn.LayerNorm computes it (biased variance),
// with gradients for x, weight and bias.
import { needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { rowWorkgroupSize } from '../common/wgsl.js';
import { normWeightGrads } from '../common/weight-grad.js';
import { checkNormArgs } from '../rmsnorm/rms-norm.js';
import { layerNormBackwardSpec, layerNormForwardSpec } from './layer-norm.kernel.js';

/**
 * LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias with the biased
 * variance. weight and bias ([D], f32/f16/bf16) may each be null; y is f32.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const { rows, cols } = checkNormArgs('layerNorm', x, [
    ['weight', weight],
    ['bias', bias],
  ]);
  const rt = x.rt;
  const lanes = rowWorkgroupSize(cols);
  const grad = needsGrad(x, weight, bias);
  const y = empty(rt, x.shape, 'f32');
  const stats = grad ? empty(rt, [rows, 2], 'f32') : null;
  const bindings = [x.binding()];
  if (weight) bindings.push(weight.binding());
  if (bias) bindings.push(bias.binding());
  bindings.push(y.binding());
  if (stats) bindings.push(stats.binding());
  const spec = layerNormForwardSpec(x.dtype, weight?.dtype ?? null, bias?.dtype ?? null, stats !== null, lanes);
  rt.dispatch(spec, bindings, [rows, cols, eps], grid1d(rows, 1));
  if (!stats) return y;
  const needX = x.requiresGrad;
  const needW = weight?.requiresGrad ?? false;
  const needB = bias?.requiresGrad ?? false;
  const saved = weight ? [x, stats, weight] : [x, stats];
  record(y, 'layerNorm', [x, weight, bias], saved, (g, s) =>
    noGrad(() => {
      const [sx, ss, sw] = s as [Tensor, Tensor, Tensor | undefined];
      let dx: Tensor | null = null;
      if (needX) {
        dx = empty(rt, x.shape, 'f32');
        const b = [g.binding(), sx.binding(), ss.binding()];
        if (sw) b.push(sw.binding());
        b.push(dx.binding());
        rt.dispatch(layerNormBackwardSpec(sx.dtype, sw?.dtype ?? null, lanes), b, [rows, cols], grid1d(rows, 1));
      }
      const { dw, db } = normWeightGrads('ln', g, sx, ss, rows, cols, needW, needB);
      return [dx, dw, db];
    }),
  );
  stats.dispose();
  return y;
}
