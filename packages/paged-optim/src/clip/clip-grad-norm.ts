// Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_ (2-norm) does it, all on the
// GPU: the returned norm is a tensor and nothing is read back.
import { DTypeError, PeftError, UnsupportedError } from '@peft-ts/errors';
import { empty, fromArray, grid1d, scalar, type KernelSpec, type Tensor } from '@peft-ts/tensor';
import { BLOCK, ITEM_WORDS, encodeItems, operandWindow, packItems, splitRange, type WorkItem } from '../multi-tensor/work-items.js';
import { finishSpec, scaleSpec, SUMSQ_BLOCK, sumsqSpec } from './clip.kernel.js';

const MAX_SLOTS = 8;

const specCache = new Map<string, KernelSpec>();
function cached(key: string, make: () => KernelSpec): KernelSpec {
  let spec = specCache.get(key);
  if (!spec) specCache.set(key, (spec = make()));
  return spec;
}

/**
 * Scales the gradients of `params` (those that have one) in place so that their global 2-norm is
 * at most `maxNorm`: total = sqrt(sum of squared per-tensor norms), coef = maxNorm / (total + 1e-6)
 * clamped to 1, every gradient multiplied by coef. Returns the total norm (before clipping) as a
 * scalar f32 tensor the caller owns; with no gradients, a zero tensor.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  const first = params[0];
  if (!first) throw new PeftError('EMPTY_PARAMS', 'clipGradNorm: got an empty parameter list');
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) throw new UnsupportedError({ what: 'maxNorm', got: maxNorm, supported: ['a number'], where: 'clipGradNorm' });
  const rt = first.rt;
  const grads: Tensor[] = [];
  for (const p of params) {
    if (!p.grad) continue;
    p.grad.assertAlive('clipGradNorm gradient');
    if (p.grad.dtype !== 'f32') throw new DTypeError({ op: `clipGradNorm gradient of ${p.toString()}`, expected: 'f32', got: p.grad.dtype });
    if (p.grad.rt !== rt) throw new PeftError('MIXED_RUNTIMES', 'clipGradNorm: gradients come from different runtimes');
    grads.push(p.grad);
  }
  if (grads.length === 0) return scalar(rt, 0, { tag: 'other' });

  const align = rt.gpu.info.limits.minStorageBufferOffsetAlignment;
  const maxItemElements = Math.floor((rt.maxBindingBytes - align) / 4);
  const slots = (fixed: number): number => Math.max(1, Math.min(MAX_SLOTS, rt.gpu.info.limits.maxStorageBuffersPerShaderStage - fixed));

  // Pass 1 items: blocks of SUMSQ_BLOCK; each block's partial sum lands at its own index.
  const sumItems: WorkItem[] = [];
  const ranges: number[] = [];
  let partials = 0;
  for (const g of grads) {
    const start = partials;
    for (const [s, count] of splitRange(0, g.numel, maxItemElements, SUMSQ_BLOCK)) {
      const blocks = Math.max(1, Math.ceil(count / SUMSQ_BLOCK));
      sumItems.push({ operands: [g], start: s, count, blocks, stateBlock: partials, flags: 0, scalars: [] });
      partials += blocks;
    }
    ranges.push(start, partials - start);
  }
  const scaleItems: WorkItem[] = [];
  for (const g of grads) {
    for (const [s, count] of splitRange(0, g.numel, maxItemElements, BLOCK)) {
      if (count > 0) scaleItems.push({ operands: [g], start: s, count, blocks: Math.ceil(count / BLOCK), stateBlock: 0, flags: 0, scalars: [] });
    }
  }
  const limits = { maxStateBlocks: Number.MAX_SAFE_INTEGER, maxWorkgroups: 65535 * 65535 };
  const sumDispatches = packItems(sumItems, { ...limits, maxItems: slots(2) });
  const scaleDispatches = packItems(scaleItems, { ...limits, maxItems: slots(2) });

  const nItems = sumItems.length + scaleItems.length;
  const words = new Uint32Array(nItems * ITEM_WORDS);
  let at = 0;
  const sumPlan = sumDispatches.map((d) => {
    const windows = d.items.map((it) => operandWindow(it.operands[0] ?? first, it.start, it.count, align));
    encodeItems(d, windows.map((w) => [w.base]), words, at);
    const plan = { d, windows, itemBase: at };
    at += d.items.length;
    return plan;
  });
  const scalePlan = scaleDispatches.map((d) => {
    const windows = d.items.map((it) => operandWindow(it.operands[0] ?? first, it.start, it.count, align));
    encodeItems(d, windows.map((w) => [w.base]), words, at);
    const plan = { d, windows, itemBase: at };
    at += d.items.length;
    return plan;
  });

  const meta = fromArray(rt, words, [words.length], 'u32', { tag: 'other' });
  const rangeT = fromArray(rt, Uint32Array.from(ranges), [ranges.length], 'u32', { tag: 'other' });
  const part = empty(rt, [partials], 'f32', { tag: 'other' });
  const coef = empty(rt, [1], 'f32', { tag: 'other' });
  const norm = empty(rt, [], 'f32', { tag: 'other' });
  try {
    // Every dispatch binds all slots (spares past those holding work), so one pipeline serves any count.
    const n = slots(2);
    const spares = (kind: 'read' | 'read_write', used: number) => Array.from({ length: n - used }, (_, k) => rt.spareBinding(kind, k));
    for (const { d, windows, itemBase } of sumPlan) {
      rt.dispatch(cached(`sumsq${n}`, () => sumsqSpec(n)), [...windows.map((w) => w.binding), ...spares('read', windows.length), part.binding(), meta.binding()], [itemBase, d.items.length, d.totalWorkgroups, d.stateStart], grid1d(d.totalWorkgroups, 1));
    }
    rt.dispatch(cached('finish', finishSpec), [part.binding(), rangeT.binding(), norm.binding(), coef.binding()], [grads.length, maxNorm], [1, 1, 1]);
    for (const { d, windows, itemBase } of scalePlan) {
      rt.dispatch(cached(`scale${n}`, () => scaleSpec(n)), [...windows.map((w) => w.binding), ...spares('read_write', windows.length), coef.binding(), meta.binding()], [itemBase, d.items.length, d.totalWorkgroups], grid1d(d.totalWorkgroups, 1));
    }
  } catch (error) {
    norm.dispose();
    throw error;
  } finally {
    // Released buffers are reused only after the commands that read them are submitted.
    for (const t of [meta, rangeT, part, coef]) t.dispose();
  }
  return norm;
}
