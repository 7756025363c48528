// Elementwise add/sub/mul/div with broadcasting, and their gradients.
import { DTypeError } from '@peft-ts/errors';
import { needsGrad, record } from '../../core/autograd.js';
import { empty, fromArray } from '../../core/create.js';
import { isFloat } from '../../core/dtype.js';
import { grid1d } from '../../core/kernel.js';
import { noGrad, Tensor } from '../../core/tensor.js';
import { broadcastShapes, broadcastStrides, collapseDims, padRank, sameShape } from '../shape-utils.js';
import { sumTo } from '../reduce/sum-to.js';
import { binarySpec, type BinaryOp } from './binary.kernel.js';

function asTensor(like: Tensor, v: Tensor | number): Tensor {
  return typeof v === 'number' ? fromArray(like.rt, [v], [], 'f32') : v;
}

/** Runs the kernel only (no autograd). Output is f32. */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (!isFloat(a.dtype) || !isFloat(b.dtype)) throw new DTypeError({ op, expected: 'f32 | f16 | bf16', got: `${a.dtype}, ${b.dtype}` });
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = empty(a.rt, shape, 'f32');
  const n = out.numel;
  const flat = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const uniforms = [n];
  let rank = 0;
  if (!flat) {
    // Size-1 dims drop out and dims both inputs step through as one merge.
    const { dims, strides } = collapseDims(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    const [as = [], bs = []] = strides;
    rank = dims.length;
    uniforms.push(...padRank(dims, 1), ...padRank(as, 0), ...padRank(bs, 0));
  }
  a.rt.dispatch(binarySpec(op, a.dtype, b.dtype, !flat, rank), [a.binding(), b.binding(), out.binding()], uniforms, grid1d(n, 256));
  return out;
}

function binary(op: BinaryOp, a: Tensor, bIn: Tensor | number): Tensor {
  const b = asTensor(a, bIn);
  const out = binaryRaw(op, a, b);
  if (b !== bIn) {
    // A number operand is a constant: no gradient, and the temporary goes once recorded.
    const r = recordBinary(op, out, a, null, b);
    b.dispose();
    return r;
  }
  return recordBinary(op, out, a, b, b);
}

function recordBinary(op: BinaryOp, out: Tensor, a: Tensor, bGrad: Tensor | null, b: Tensor): Tensor {
  if (!needsGrad(a, bGrad)) return out;
  const needA = a.requiresGrad;
  const needB = bGrad?.requiresGrad ?? false;
  const saved = op === 'add' || op === 'sub' ? [] : [a, b];
  return record(out, op, [a, bGrad], saved, (g, s) =>
    noGrad(() => {
      const [sa, sb] = s;
      let ga: Tensor | null = null;
      let gb: Tensor | null = null;
      switch (op) {
        case 'add':
          if (needA) ga = sumTo(g, a.shape);
          if (needB) gb = sumTo(g, b.shape);
          break;
        case 'sub':
          if (needA) ga = sumTo(g, a.shape);
          if (needB) gb = reduceScaled(g, b.shape, -1);
          break;
        case 'mul':
          if (needA && sb) ga = reduceProduct(g, sb, a.shape);
          if (needB && sa) gb = reduceProduct(g, sa, b.shape);
          break;
        case 'div':
          if (sa && sb) {
            // d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2
            if (needA) ga = reduceBinary('div', g, sb, a.shape);
            if (needB) {
              const t1 = binaryRaw('mul', g, sa);
              const t2 = binaryRaw('mul', sb, sb);
              const t3 = binaryRaw('div', t1, t2);
              gb = reduceScaled(t3, b.shape, -1);
              t1.dispose();
              t2.dispose();
              t3.dispose();
            }
          }
          break;
      }
      return [ga, gb];
    }),
  );
}

function reduceProduct(g: Tensor, other: Tensor, shape: readonly number[]): Tensor {
  return reduceBinary('mul', g, other, shape);
}

function reduceBinary(op: BinaryOp, g: Tensor, other: Tensor, shape: readonly number[]): Tensor {
  const t = binaryRaw(op, g, other);
  if (sameShape(t.shape, shape)) return t;
  const r = sumTo(t, shape);
  t.dispose();
  return r;
}

function reduceScaled(g: Tensor, shape: readonly number[], factor: number): Tensor {
  const f = fromArray(g.rt, [factor], [], 'f32');
  const r = reduceBinary('mul', g, f, shape);
  f.dispose();
  return r;
}

export const add = (a: Tensor, b: Tensor | number): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor | number): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor | number): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor | number): Tensor => binary('div', a, b);
