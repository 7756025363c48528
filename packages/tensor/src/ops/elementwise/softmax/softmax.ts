// softmax / logSoftmax over the last axis (numerically stable: max-subtracted), with backward
// rules that use the saved output. Inputs f32/f16/bf16, outputs f32.
import { needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { assertDType, DTYPE_BYTES, FLOAT_DTYPES } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { planRowChunks, rowsBinding } from '../chunks.js';
import { rowWorkgroupSize } from '../reduce/reduce.js';
import { reduceMode } from '../wg-reduce.js';
import { softmaxBackwardSpec, softmaxSpec, type SoftmaxKind } from './softmax.kernel.js';

function rowsOf(x: Tensor): { rows: number; len: number } {
  const len = x.shape.length === 0 ? 1 : (x.shape[x.shape.length - 1] ?? 1);
  return { rows: len === 0 ? 0 : x.numel / len, len };
}

function softmaxBackward(kind: SoftmaxKind, y: Tensor, g: Tensor): Tensor {
  const rt = y.rt;
  const dx = empty(rt, y.shape, 'f32');
  const { rows, len } = rowsOf(y);
  if (rows === 0 || len === 0) return dx;
  const wg = rowWorkgroupSize(len);
  const spec = softmaxBackwardSpec(kind, reduceMode(rt), wg);
  for (const c of planRowChunks(rt, `${kind} backward`, rows, [len * 4])) {
    rt.dispatch(spec, [rowsBinding(y, c, len * 4), rowsBinding(g, c, len * 4), rowsBinding(dx, c, len * 4)], [c.count, len], grid1d(c.count, 1));
  }
  return dx;
}

function run(kind: SoftmaxKind, op: string, x: Tensor): Tensor {
  assertDType(op, x.dtype, FLOAT_DTYPES);
  const rt = x.rt;
  const y = empty(rt, x.shape, 'f32');
  const { rows, len } = rowsOf(x);
  if (rows > 0 && len > 0) {
    const xb = DTYPE_BYTES[x.dtype];
    const wg = rowWorkgroupSize(len);
    const spec = softmaxSpec(kind, x.dtype, reduceMode(rt), wg);
    for (const c of planRowChunks(rt, op, rows, [len * xb, len * 4])) {
      rt.dispatch(spec, [rowsBinding(x, c, len * xb), rowsBinding(y, c, len * 4)], [c.count, len], grid1d(c.count, 1));
    }
  }
  if (!needsGrad(x)) return y;
  return record(y, op, [x], [y], (g, [sy]) => noGrad(() => [sy ? softmaxBackward(kind, sy, g) : null]));
}

/** exp(x - max) / sum(exp(x - max)) over the last axis. */
export function softmax(x: Tensor): Tensor {
  return run('softmax', 'softmax', x);
}

/** x - max - log(sum(exp(x - max))) over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  return run('log_softmax', 'logSoftmax', x);
}
