// crossEntropy (PyTorch's F.cross_entropy over logits [N, V] and i32 labels [N]) and
// causalLmLoss (transformers' shifted next-token loss). Memory: the forward keeps only the
// per-row logsumexp [N]; the backward recomputes softmax from the logits in the same kernel.
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { needsGrad, record } from '../../../core/autograd.js';
import { empty } from '../../../core/create.js';
import { assertDType, DTYPE_BYTES, FLOAT_DTYPES } from '../../../core/dtype.js';
import { grid1d } from '../../../core/kernel.js';
import { noGrad, type Tensor } from '../../../core/tensor.js';
import { assertBindable, planRowChunks, rowsBinding } from '../chunks.js';
import { rowWorkgroupSize } from '../reduce/reduce.js';
import { reduceMode } from '../wg-reduce.js';
import { ceBackwardSpec, ceForwardSpec, ceReduceSpec, shiftLabelsSpec } from './cross-entropy.kernel.js';

export interface CrossEntropyOptions {
  /** Rows whose label equals this take no part in the loss (default -100, as in PyTorch). */
  ignoreIndex?: number;
  /**
   * 'mean' (default): sum over counted rows / their number (NaN when no row counts, as in
   * PyTorch); 'sum'; 'none': the per-row losses [N], 0 on ignored rows.
   */
  reduction?: 'mean' | 'sum' | 'none';
}

export interface CausalLmLossOptions {
  ignoreIndex?: number;
  /**
   * Divide the summed loss by this instead of by the number of counted tokens (transformers'
   * num_items_in_batch, used to keep gradient accumulation exact).
   */
  numItemsInBatch?: number;
}

type How = { kind: 'none' } | { kind: 'sum' } | { kind: 'mean' } | { kind: 'divide'; denom: number };

/** Loss over `rows` rows of `len` logits each (logits may have any shape of rows * len elements). */
function crossEntropyRows(op: string, logits: Tensor, labels: Tensor, rows: number, len: number, ignore: number, how: How): Tensor {
  const rt = logits.rt;
  const xb = DTYPE_BYTES[logits.dtype];
  const mode = reduceMode(rt);
  assertBindable(rt, op, labels);
  const lse = empty(rt, [rows], 'f32');
  const loss = empty(rt, [rows], 'f32');
  if (rows > 0) {
    const spec = ceForwardSpec(logits.dtype, mode, rowWorkgroupSize(len));
    for (const c of planRowChunks(rt, op, rows, [len * xb])) {
      rt.dispatch(spec, [rowsBinding(logits, c, len * xb), labels.binding(), lse.binding(), loss.binding()], [c.count, len, c.start, ignore], grid1d(c.count, 1));
    }
  }
  let out: Tensor;
  let w: Tensor | null = null;
  if (how.kind === 'none') out = loss;
  else {
    out = empty(rt, [], 'f32');
    w = empty(rt, [1], 'f32');
    const code = how.kind === 'sum' ? 0 : how.kind === 'mean' ? 1 : 2;
    rt.dispatch(ceReduceSpec(mode), [loss.binding(), labels.binding(), out.binding(), w.binding()], [rows, ignore, code, how.kind === 'divide' ? how.denom : 1], [1, 1, 1]);
    loss.dispose();
  }
  if (!needsGrad(logits)) {
    lse.dispose();
    w?.dispose();
    return out;
  }
  const shape = logits.shape;
  const dtype = logits.dtype;
  const saved = w ? [logits, labels, lse, w] : [logits, labels, lse];
  const result = record(out, op, [logits], saved, (g, [sx, sl, slse, sw]) =>
    noGrad(() => {
      if (!sx || !sl || !slse) return [null];
      const dx = empty(rt, shape, 'f32');
      const spec = ceBackwardSpec(dtype, sw !== undefined);
      for (const c of planRowChunks(rt, `${op} backward`, rows, [len * xb, len * 4])) {
        const bindings = [rowsBinding(sx, c, len * xb), sl.binding(), slse.binding(), g.binding()];
        if (sw) bindings.push(sw.binding());
        bindings.push(rowsBinding(dx, c, len * 4));
        rt.dispatch(spec, bindings, [c.count * len, len, c.start, ignore], grid1d(c.count * len, 256));
      }
      return [dx];
    }),
  );
  lse.dispose();
  w?.dispose();
  return result;
}

function checkIgnore(op: string, ignore: number): void {
  if (!Number.isInteger(ignore) || ignore < -(2 ** 31) || ignore >= 2 ** 31) {
    throw new UnsupportedError({ what: 'ignoreIndex', got: ignore, supported: ['an i32 integer'], where: op });
  }
}

/**
 * PyTorch's F.cross_entropy(logits, labels, ignore_index, reduction) for logits [N, V]
 * (f32/f16/bf16) and labels [N] (i32). Labels are not range-checked on the host (that would need a
 * readback): a label outside [0, V) that is not ignoreIndex makes its row's loss and gradient
 * NaN, so it cannot pass unnoticed; callers validate labels beforehand (the data package does).
 */
export function crossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const ignore = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? 'mean';
  checkIgnore(op, ignore);
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new UnsupportedError({ what: 'reduction', got: reduction, supported: ['mean', 'sum', 'none'], where: op });
  }
  assertDType(op, logits.dtype, FLOAT_DTYPES);
  if (labels.dtype !== 'i32') throw new DTypeError({ op: `${op} labels`, expected: 'i32', got: labels.dtype });
  if (logits.shape.length !== 2) throw new ShapeMismatchError({ op, expected: 'logits [N, V]', got: logits.shape });
  const [N = 0, V = 0] = logits.shape;
  if (labels.shape.length !== 1 || labels.shape[0] !== N) {
    throw new ShapeMismatchError({ op, expected: `labels [${N}] for logits [${N}, ${V}]`, got: labels.shape });
  }
  if (V === 0 && N > 0) throw new ShapeMismatchError({ op, expected: 'logits with at least one class', got: logits.shape });
  return crossEntropyRows(op, logits, labels, N, V, ignore, { kind: reduction });
}

/**
 * Next-token loss of a causal LM, as transformers' ForCausalLMLoss: logits [B, T, V] at position t
 * predict labels[b, t + 1]; the last position of each row predicts nothing. Mean over the counted
 * (label != ignoreIndex) tokens, or sum / numItemsInBatch when that is given.
 */
export function causalLmLoss(logits: Tensor, labels: Tensor, options: CausalLmLossOptions = {}): Tensor {
  const op = 'causalLmLoss';
  const ignore = options.ignoreIndex ?? -100;
  checkIgnore(op, ignore);
  assertDType(op, logits.dtype, FLOAT_DTYPES);
  if (labels.dtype !== 'i32') throw new DTypeError({ op: `${op} labels`, expected: 'i32', got: labels.dtype });
  if (logits.shape.length !== 3) throw new ShapeMismatchError({ op, expected: 'logits [B, T, V]', got: logits.shape });
  const [B = 0, T = 0, V = 0] = logits.shape;
  if (labels.shape.length !== 2 || labels.shape[0] !== B || labels.shape[1] !== T) {
    throw new ShapeMismatchError({ op, expected: `labels [${B}, ${T}] for logits [${B}, ${T}, ${V}]`, got: labels.shape });
  }
  if (V === 0 && B * T > 0) throw new ShapeMismatchError({ op, expected: 'logits with at least one class', got: logits.shape });
  const n = options.numItemsInBatch;
  if (n !== undefined && !(n > 0)) throw new UnsupportedError({ what: 'numItemsInBatch', got: n, supported: ['a positive number'], where: op });
  const rt = logits.rt;
  const shifted = empty(rt, [B * T], 'i32');
  rt.dispatch(shiftLabelsSpec(), [labels.binding(), shifted.binding()], [B * T, T, ignore], grid1d(B * T, 256));
  const out = crossEntropyRows(op, logits, shifted, B * T, V, ignore, n === undefined ? { kind: 'mean' } : { kind: 'divide', denom: n });
  shifted.dispose();
  return out;
}
