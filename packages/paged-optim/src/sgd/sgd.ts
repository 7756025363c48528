// SGD with momentum exact to PyTorch (torch.optim.SGD: coupled weight decay, dampening,
// Nesterov), on the same multi-tensor and paging machinery as AdamW.
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import type { JsonValue } from '../io/state-file.js';
import { Optimizer, type GroupBase, type OptimizerOptions, type ParamsInput } from '../optimizer/optimizer.js';
import type { ParamEntry, RegionKernel } from '../optimizer/region-kernel.js';
import type { StateField } from '../paging/state-region.js';
import { SGD_FLAGS, sgdSpec } from './sgd.kernel.js';

const f32 = Math.fround;

export interface SGDGroup extends GroupBase {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export interface SGDOptions extends OptimizerOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default 0 (no momentum buffer). */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient; default 0. */
  weightDecay?: number;
  /** Default false; needs momentum > 0 and dampening 0. */
  nesterov?: boolean;
}

export const SGD_FIELDS: readonly StateField[] = [{ name: 'momentum_buffer', elementBytes: 4, blockBytes: 0 }];

/** Scalars and flags of one parameter's SGD update at 1-based step `step`. */
export function sgdItemParams(step: number, g: SGDGroup): { scalars: number[]; flags: number } {
  let flags = 0;
  if (step === 1) flags |= SGD_FLAGS.firstStep;
  if (g.nesterov) flags |= SGD_FLAGS.nesterov;
  if (g.weightDecay !== 0) flags |= SGD_FLAGS.weightDecay;
  if (g.momentum !== 0) flags |= SGD_FLAGS.momentum;
  return { scalars: [f32(g.weightDecay), f32(g.momentum), f32(1 - g.dampening), f32(-g.lr)], flags };
}

function sgdKernel(withBuffer: boolean): RegionKernel<SGDGroup> {
  return {
    fields: withBuffer ? SGD_FIELDS : [],
    spec: (n) => sgdSpec(n, withBuffer),
    extraBindings: () => [],
    fixedBindings: (withBuffer ? 1 : 0) + 1,
    fixedBytes: 0,
    itemParams: (e: ParamEntry, g: SGDGroup) => {
      if (!withBuffer && g.momentum !== 0) {
        throw new UnsupportedError({
          what: 'momentum set after the first step on a group that started without it',
          got: g.momentum,
          where: 'SGD.step()',
          supported: ['momentum fixed from the first step (create the optimizer with it)'],
        });
      }
      return sgdItemParams(e.step, g);
    },
    dispose: () => undefined,
  };
}

function check(what: string, ok: boolean, got: unknown, supported: string): void {
  if (!ok) throw new UnsupportedError({ what, got, supported: [supported], where: 'SGD' });
}

/** SGD (torch.optim.SGD semantics, maximize off). Groups with momentum 0 keep no state. */
export class SGD extends Optimizer<SGDGroup> {
  constructor(params: ParamsInput<SGDGroup>, options: SGDOptions = {}) {
    super(
      'SGD',
      params,
      {
        lr: options.lr ?? 1e-3,
        momentum: options.momentum ?? 0,
        dampening: options.dampening ?? 0,
        weightDecay: options.weightDecay ?? 0,
        nesterov: options.nesterov ?? false,
      },
      options,
    );
  }

  protected createKernels(): RegionKernel<SGDGroup>[] {
    return [sgdKernel(true), sgdKernel(false)];
  }

  protected regionOf(entry: ParamEntry): number {
    return (this.paramGroups[entry.group]?.momentum ?? 0) !== 0 ? 0 : 1;
  }

  protected checkGroup(g: SGDGroup, index: number): void {
    const at = `param group ${index}`;
    const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
    check(`${at} lr`, finite(g.lr), g.lr, 'a finite number >= 0');
    check(`${at} momentum`, finite(g.momentum), g.momentum, 'a finite number >= 0');
    check(`${at} dampening`, typeof g.dampening === 'number' && Number.isFinite(g.dampening), g.dampening, 'a finite number');
    check(`${at} weightDecay`, finite(g.weightDecay), g.weightDecay, 'a finite number >= 0');
    check(`${at} nesterov`, typeof g.nesterov === 'boolean', g.nesterov, 'true or false');
    check(`${at} nesterov`, !g.nesterov || (g.momentum > 0 && g.dampening === 0), g.nesterov, 'Nesterov only with momentum > 0 and dampening 0');
  }

  protected groupJson(g: SGDGroup): Record<string, JsonValue> {
    return { lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov };
  }

  protected applyGroupJson(g: SGDGroup, json: Record<string, JsonValue>, file: string, index: number): void {
    const field = (k: string): string => `paramGroups[${index}].${k}`;
    const num = (k: string): number => {
      const v = json[k];
      if (typeof v !== 'number') throw new FormatError({ file, field: field(k), expected: 'a number', got: v });
      return v;
    };
    if (typeof json.nesterov !== 'boolean') throw new FormatError({ file, field: field('nesterov'), expected: 'true or false', got: json.nesterov });
    const next: SGDGroup = { ...g, lr: num('lr'), momentum: num('momentum'), dampening: num('dampening'), weightDecay: num('weightDecay'), nesterov: json.nesterov };
    try {
      this.checkGroup(next, index);
    } catch (cause) {
      throw new FormatError({ file, field: field('(settings)'), expected: 'valid SGD settings', got: (cause as Error).message, cause });
    }
    if ((next.momentum !== 0) !== (g.momentum !== 0)) {
      throw new FormatError({ file, field: field('momentum'), expected: g.momentum !== 0 ? 'a non-zero momentum (this group keeps a momentum buffer)' : '0 (this group keeps no momentum buffer)', got: next.momentum });
    }
    g.lr = next.lr;
    g.momentum = next.momentum;
    g.dampening = next.dampening;
    g.weightDecay = next.weightDecay;
    g.nesterov = next.nesterov;
  }

  protected settingsJson(): Record<string, JsonValue> {
    return {};
  }
}
