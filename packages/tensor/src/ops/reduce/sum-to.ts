// sumTo: folds a gradient of a broadcast result back to the shape of the broadcast input.
import { ShapeMismatchError } from '@peft-ts/errors';
import { empty } from '../../core/create.js';
import { clone } from '../../core/autograd.js';
import { grid1d } from '../../core/kernel.js';
import { stridesOf, type Shape, type Tensor } from '../../core/tensor.js';
import { padRank, sameShape } from '../shape-utils.js';
import { sumStridedSpec } from './sum-to.kernel.js';

/** Sums f32 `x` over the given axes (sorted, distinct); the result keeps the other dims in order. */
export function sumAxesStrided(x: Tensor, axes: readonly number[], outShape: Shape): Tensor {
  const strides = stridesOf(x.shape);
  const keptDims: number[] = [];
  const keptStrides: number[] = [];
  const redDims: number[] = [];
  const redStrides: number[] = [];
  x.shape.forEach((d, i) => {
    if (axes.includes(i)) {
      redDims.push(d);
      redStrides.push(strides[i] ?? 0);
    } else {
      keptDims.push(d);
      keptStrides.push(strides[i] ?? 0);
    }
  });
  const n = keptDims.reduce((a, b) => a * b, 1);
  const r = redDims.reduce((a, b) => a * b, 1);
  const out = empty(x.rt, outShape, 'f32');
  const uniforms = [n, r, ...padRank(keptDims, 1), ...padRank(keptStrides, 0), ...padRank(redDims, 1), ...padRank(redStrides, 0)];
  x.rt.dispatch(sumStridedSpec(), [x.binding(), out.binding()], uniforms, grid1d(n, 256));
  return out;
}

/** Sums `g` (shape = broadcast of `shape` with something) down to `shape`. Returns a new tensor. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return clone(g);
  const lead = g.shape.length - shape.length;
  if (lead < 0) throw new ShapeMismatchError({ op: 'sumTo', expected: `a shape broadcast from [${shape.join(', ')}]`, got: g.shape });
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    const target = i < lead ? 1 : (shape[i - lead] ?? 1);
    if (i < lead || (target === 1 && d !== 1)) axes.push(i);
    else if (target !== d) throw new ShapeMismatchError({ op: 'sumTo', expected: shape, got: g.shape, detail: `dim ${i}` });
  });
  return sumAxesStrided(g, axes, shape);
}
