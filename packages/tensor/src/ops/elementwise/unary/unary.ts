// Elementwise unary ops (scale, exp, log, activations, erf, gelu) and the fused silu(gate) * up of
// gated MLPs, each with its backward rule. Outputs are f32; inputs may be f32, f16 or bf16.
import { ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { assertDType, DTYPE_BYTES, FLOAT_DTYPES } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { sameShape } from '../../shape-utils.js';
import { planRowChunks, rowsBinding } from '../chunks.js';
import { siluMulBackwardSpec, siluMulSpec, UNARY_SAVES, unaryBackwardSpec, unarySpec, type UnaryOp } from './unary.kernel.js';

/** Runs the forward kernel only (no autograd). */
function unaryRaw(op: UnaryOp, x: Tensor, alpha: number): Tensor {
  const out = empty(x.rt, x.shape, 'f32');
  const n = x.numel;
  if (n === 0) return out;
  const xb = DTYPE_BYTES[x.dtype];
  for (const c of planRowChunks(x.rt, op, n, [xb, 4])) {
    x.rt.dispatch(unarySpec(op, x.dtype), [rowsBinding(x, c, xb), rowsBinding(out, c, 4)], [c.count, alpha], grid1d(c.count, 256));
  }
  return out;
}

function unaryBackwardRaw(op: UnaryOp, saved: Tensor | undefined, g: Tensor, alpha: number): Tensor {
  const dx = empty(g.rt, g.shape, 'f32');
  const n = g.numel;
  if (n === 0) return dx;
  const sb = saved ? DTYPE_BYTES[saved.dtype] : 4;
  const spec = unaryBackwardSpec(op, saved?.dtype ?? 'f32');
  for (const c of planRowChunks(g.rt, `${op} backward`, n, [sb, 4, 4])) {
    const bindings = [rowsBinding(g, c, 4), rowsBinding(dx, c, 4)];
    if (saved) bindings.unshift(rowsBinding(saved, c, sb));
    g.rt.dispatch(spec, bindings, [c.count, alpha], grid1d(c.count, 256));
  }
  return dx;
}

function unary(op: UnaryOp, name: string, x: Tensor, alpha = 0): Tensor {
  assertDType(name, x.dtype, FLOAT_DTYPES);
  const y = unaryRaw(op, x, alpha);
  if (!needsGrad(x)) return y;
  const saves = UNARY_SAVES[op];
  const saved = saves === 'x' ? [x] : saves === 'y' ? [y] : [];
  return record(y, name, [x], saved, (g, s) => noGrad(() => [unaryBackwardRaw(op, s[0], g, alpha)]));
}

/** x * s for a number s. */
export const scale = (x: Tensor, s: number): Tensor => unary('scale', 'scale', x, s);
export const neg = (x: Tensor): Tensor => unary('neg', 'neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', 'exp', x);
/** Natural log (NaN below 0, -Infinity at 0). */
export const log = (x: Tensor): Tensor => unary('log', 'log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', 'sqrt', x);
/** 1 / sqrt(x). */
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', 'rsqrt', x);
export const square = (x: Tensor): Tensor => unary('square', 'square', x);
/** 1 / (1 + exp(-x)). */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', 'sigmoid', x);
/** x * sigmoid(x) (SiLU, "swish"). */
export const silu = (x: Tensor): Tensor => unary('silu', 'silu', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', 'tanh', x);
/** max(x, 0); NaN stays NaN. */
export const relu = (x: Tensor): Tensor => unary('relu', 'relu', x);
/** The error function, to f32 round-off (about 2 ulp). */
export const erf = (x: Tensor): Tensor => unary('erf', 'erf', x);

export interface GeluOptions {
  /**
   * 'none' (default): x * Phi(x) with the exact normal cdf, as torch's GELU(); 'tanh':
   * 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), GPT-2's gelu_new.
   */
  approximate?: 'none' | 'tanh';
}

export function gelu(x: Tensor, options: GeluOptions = {}): Tensor {
  const approximate = options.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw new UnsupportedError({ what: 'gelu approximation', got: approximate, supported: ['none', 'tanh'], where: 'gelu' });
  }
  return unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', 'gelu', x);
}

/** silu(gate) * up in one kernel (the gated MLP of Llama-family models); shapes must match. */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  assertDType('siluMul', gate.dtype, FLOAT_DTYPES);
  assertDType('siluMul', up.dtype, FLOAT_DTYPES);
  if (!sameShape(gate.shape, up.shape)) throw new ShapeMismatchError({ op: 'siluMul', expected: gate.shape, got: up.shape, detail: 'gate and up must have one shape' });
  const rt = gate.rt;
  const out = empty(rt, gate.shape, 'f32');
  const n = out.numel;
  const gb = DTYPE_BYTES[gate.dtype];
  const ub = DTYPE_BYTES[up.dtype];
  if (n > 0) {
    for (const c of planRowChunks(rt, 'siluMul', n, [gb, ub, 4])) {
      rt.dispatch(siluMulSpec(gate.dtype, up.dtype), [rowsBinding(gate, c, gb), rowsBinding(up, c, ub), rowsBinding(out, c, 4)], [c.count], grid1d(c.count, 256));
    }
  }
  if (!needsGrad(gate, up)) return out;
  const needGate = gate.requiresGrad;
  const needUp = up.requiresGrad;
  return record(out, 'siluMul', [gate, up], [gate, up], (g, [sg, su]) =>
    noGrad(() => {
      if (!sg || !su) return [null, null];
      const which = needGate && needUp ? 'both' : needGate ? 'gate' : 'up';
      const dgate = needGate ? empty(rt, gate.shape, 'f32') : null;
      const dup = needUp ? empty(rt, up.shape, 'f32') : null;
      if (n > 0) {
        for (const c of planRowChunks(rt, 'siluMul backward', n, [gb, ub, 4, 4, 4])) {
          const bindings = [rowsBinding(sg, c, gb), rowsBinding(su, c, ub), rowsBinding(g, c, 4)];
          if (dgate) bindings.push(rowsBinding(dgate, c, 4));
          if (dup) bindings.push(rowsBinding(dup, c, 4));
          rt.dispatch(siluMulBackwardSpec(gate.dtype, up.dtype, which), bindings, [c.count], grid1d(c.count, 256));
        }
      }
      return [dgate, dup];
    }),
  );
}
