// AdamW exact to PyTorch (f32 state), and 8-bit state as bitsandbytes keeps it: blockwise
// dynamic quantization of m and v for tensors of at least min8bitSize elements.
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { DYNAMIC_MAP_SIGNED, DYNAMIC_MAP_UNSIGNED } from '@peft-ts/nf4-quant';
import { fromArray, type Tensor } from '@peft-ts/tensor';
import type { JsonValue } from '../io/state-file.js';
import { Optimizer, type GroupBase, type OptimizerOptions, type ParamsInput } from '../optimizer/optimizer.js';
import type { ParamEntry, RegionKernel } from '../optimizer/region-kernel.js';
import type { StateField } from '../paging/state-region.js';
import { adamw32Spec } from './adamw.kernel.js';
import { adamw8Spec } from './adamw8bit.kernel.js';

const f32 = Math.fround;

export interface AdamWGroup extends GroupBase {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

export interface AdamWOptions extends OptimizerOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; default 1e-2 (PyTorch's AdamW default). */
  weightDecay?: number;
  /** 32 (f32 state, PyTorch's update) or 8 (8-bit blockwise state, bitsandbytes' update). Default 32. */
  bits?: 32 | 8;
  /** With bits 8: tensors with fewer elements keep f32 state. Default 4096 (bitsandbytes' min_8bit_size). */
  min8bitSize?: number;
}

export const MIN_8BIT_SIZE = 4096;

export const ADAMW32_FIELDS: readonly StateField[] = [
  { name: 'exp_avg', elementBytes: 4, blockBytes: 0 },
  { name: 'exp_avg_sq', elementBytes: 4, blockBytes: 0 },
];

export const ADAMW8_FIELDS: readonly StateField[] = [
  { name: 'state1', elementBytes: 1, blockBytes: 0 },
  { name: 'state2', elementBytes: 1, blockBytes: 0 },
  { name: 'absmax1', elementBytes: 0, blockBytes: 4 },
  { name: 'absmax2', elementBytes: 0, blockBytes: 4 },
];

/**
 * PyTorch's `_single_tensor_adam` (decoupled weight decay, amsgrad off): bias corrections in
 * float64 on the host as PyTorch computes them for non-capturable steps, passed as f32 scalars.
 */
export function adamw32Scalars(step: number, g: AdamWGroup): number[] {
  const [beta1, beta2] = g.betas;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  const stepSize = g.lr / bc1;
  return [f32(1 - g.lr * g.weightDecay), f32(1 - beta1), f32(beta2), f32(1 - beta2), f32(Math.sqrt(bc2)), f32(g.eps), f32(-stepSize)];
}

/** bitsandbytes' 8-bit blockwise Adam scalars (its f32 arithmetic; bias corrections in float64). */
export function adamw8Scalars(step: number, g: AdamWGroup): number[] {
  const b1 = f32(g.betas[0]);
  const b2 = f32(g.betas[1]);
  const corr1 = 1 - g.betas[0] ** step;
  const corr2 = Math.sqrt(1 - g.betas[1] ** step);
  return [b1, f32(1 - b1), b2, f32(1 - b2), f32(f32(corr2) * f32(g.eps)), f32((-g.lr * corr2) / corr1), f32(1 - f32(f32(g.lr) * f32(g.weightDecay)))];
}

function adamw32Kernel(): RegionKernel<AdamWGroup> {
  return {
    fields: ADAMW32_FIELDS,
    spec: adamw32Spec,
    extraBindings: () => [],
    fixedBindings: ADAMW32_FIELDS.length + 1,
    fixedBytes: 0,
    itemParams: (e: ParamEntry, g: AdamWGroup) => ({ scalars: adamw32Scalars(e.step, g), flags: 0 }),
    dispose: () => undefined,
  };
}

function adamw8Kernel(rt: Tensor['rt']): RegionKernel<AdamWGroup> {
  const maps = new Float32Array(512);
  maps.set(DYNAMIC_MAP_SIGNED, 0);
  maps.set(DYNAMIC_MAP_UNSIGNED, 256);
  const codes = fromArray(rt, maps, [512], 'f32', { tag: 'optimizer', name: 'dynamic 8-bit code maps' }).keep();
  return {
    fields: ADAMW8_FIELDS,
    spec: adamw8Spec,
    extraBindings: () => [codes.binding()],
    fixedBindings: ADAMW8_FIELDS.length + 2,
    fixedBytes: codes.byteLength,
    itemParams: (e: ParamEntry, g: AdamWGroup) => ({ scalars: adamw8Scalars(e.step, g), flags: g.weightDecay > 0 ? 1 : 0 }),
    dispose: () => codes.dispose(),
  };
}

function checkNumber(what: string, value: unknown, ok: (v: number) => boolean, supported: string): void {
  if (typeof value !== 'number' || !ok(value)) throw new UnsupportedError({ what, got: value, supported: [supported], where: 'AdamW' });
}

/**
 * AdamW (torch.optim.AdamW semantics: decoupled weight decay applied first, amsgrad off). With
 * `bits: 8`, m and v of tensors with at least `min8bitSize` elements are kept in 8 bits per value
 * (blockwise dynamic quantization, bitsandbytes' AdamW8bit update); smaller ones keep f32 state.
 */
export class AdamW extends Optimizer<AdamWGroup> {
  readonly bits: 32 | 8;
  readonly min8bitSize: number;

  constructor(params: ParamsInput<AdamWGroup>, options: AdamWOptions = {}) {
    super(
      'AdamW',
      params,
      { lr: options.lr ?? 1e-3, betas: options.betas ?? [0.9, 0.999], eps: options.eps ?? 1e-8, weightDecay: options.weightDecay ?? 1e-2 },
      options,
    );
    const bits = options.bits ?? 32;
    if (bits !== 32 && bits !== 8) throw new UnsupportedError({ what: 'state bits', got: bits, supported: ['32', '8'], where: 'AdamW' });
    this.bits = bits;
    const min = options.min8bitSize ?? MIN_8BIT_SIZE;
    checkNumber('min8bitSize', min, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    this.min8bitSize = min;
  }

  protected createKernels(): RegionKernel<AdamWGroup>[] {
    return this.bits === 8 ? [adamw8Kernel(this.rt), adamw32Kernel()] : [adamw32Kernel()];
  }

  protected regionOf(entry: ParamEntry): number {
    return this.bits === 8 && entry.param.numel < this.min8bitSize ? 1 : 0;
  }

  protected checkGroup(g: AdamWGroup, index: number): void {
    const at = `param group ${index}`;
    checkNumber(`${at} lr`, g.lr, (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0');
    checkNumber(`${at} eps`, g.eps, (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0');
    checkNumber(`${at} weightDecay`, g.weightDecay, (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0');
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new UnsupportedError({ what: `${at} betas`, got: g.betas, supported: ['[beta1, beta2]'], where: 'AdamW' });
    g.betas.forEach((b, i) => checkNumber(`${at} betas[${i}]`, b, (v) => v >= 0 && v < 1, '0 <= beta < 1'));
  }

  protected groupJson(g: AdamWGroup): Record<string, JsonValue> {
    return { lr: g.lr, betas: [...g.betas], eps: g.eps, weightDecay: g.weightDecay };
  }

  protected applyGroupJson(g: AdamWGroup, json: Record<string, JsonValue>, file: string, index: number): void {
    const field = (k: string): string => `paramGroups[${index}].${k}`;
    const num = (k: string): number => {
      const v = json[k];
      if (typeof v !== 'number') throw new FormatError({ file, field: field(k), expected: 'a number', got: v });
      return v;
    };
    const betas = json.betas;
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
      throw new FormatError({ file, field: field('betas'), expected: '[beta1, beta2]', got: betas });
    }
    const next: AdamWGroup = { ...g, lr: num('lr'), betas: [Number(betas[0]), Number(betas[1])], eps: num('eps'), weightDecay: num('weightDecay') };
    try {
      this.checkGroup(next, index);
    } catch (cause) {
      throw new FormatError({ file, field: field('(settings)'), expected: 'valid AdamW settings', got: (cause as Error).message, cause });
    }
    g.lr = next.lr;
    g.betas = next.betas;
    g.eps = next.eps;
    g.weightDecay = next.weightDecay;
  }

  protected settingsJson(): Record<string, JsonValue> {
    return this.bits === 8 ? { bits: 8, min8bitSize: this.min8bitSize } : { bits: 32 };
  }
}

/** AdamW with 8-bit state (bitsandbytes' AdamW8bit): `new AdamW(params, { ...options, bits: 8 })`. */
export class AdamW8bit extends AdamW {
  constructor(params: ParamsInput<AdamWGroup>, options: Omit<AdamWOptions, 'bits'> = {}) {
    super(params, { ...options, bits: 8 });
  }
}
