// Weight and bias gradients of a norm: per-column sums over all rows, in two deterministic
// stages (row-block partials, then a sum over blocks).
import { empty } from '../../../core/create.js';
import type { Tensor } from '../../../core/tensor.js';
import { sumAxesStrided } from '../../reduce/sum-to.js';
import { WGRAD_LANES, weightGradSpec, type NormKind } from './weight-grad.kernel.js';

/** Rows per block aim: enough work per invocation, at most this many blocks to fold afterwards. */
const MIN_BLOCK_ROWS = 32;
const MAX_BLOCKS = 1024;

/** sum over rows of g * xhat (weight) and of g (bias), each [cols] f32; null where not asked. */
export function normWeightGrads(
  kind: NormKind,
  g: Tensor,
  x: Tensor,
  stats: Tensor,
  rows: number,
  cols: number,
  needW: boolean,
  needB: boolean,
): { dw: Tensor | null; db: Tensor | null } {
  if (!needW && !needB) return { dw: null, db: null };
  const rt = g.rt;
  const blocks = Math.max(1, Math.min(MAX_BLOCKS, Math.ceil(rows / MIN_BLOCK_ROWS)));
  const block = Math.max(1, Math.ceil(rows / blocks));
  const shape = blocks === 1 ? [cols] : [blocks, cols];
  const pw = needW ? empty(rt, shape, 'f32') : null;
  const pb = needB ? empty(rt, shape, 'f32') : null;
  const bindings = [g.binding(), x.binding(), stats.binding()];
  if (pw) bindings.push(pw.binding());
  if (pb) bindings.push(pb.binding());
  rt.dispatch(weightGradSpec(kind, x.dtype, needW, needB), bindings, [rows, cols, block], [Math.ceil(cols / WGRAD_LANES), blocks, 1]);
  const fold = (p: Tensor | null): Tensor | null => {
    if (!p || blocks === 1) return p;
    const r = sumAxesStrided(p, [0], [cols]);
    p.dispose();
    return r;
  };
  return { dw: fold(pw), db: fold(pb) };
}
