// Rotary embedding tables built on the host: inverse frequencies for each rope scaling type and
// the [positions, rotaryDim] cos/sin tables, with every float32 rounding the reference
// implementation makes reproduced through Math.fround.
import { ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { fromArray } from '../../../core/create.js';
import type { MemoryTag } from '../../../core/memory.js';
import type { Runtime } from '../../../core/runtime.js';
import type { Tensor } from '../../../core/tensor.js';

/** How the inverse frequencies are rescaled for longer contexts (a model config's rope scaling). */
export type RopeScaling =
  | { type: 'default' }
  /** Position interpolation: every frequency divided by `factor`. */
  | { type: 'linear'; factor: number }
  /** NTK-aware: the base grows once the sequence passes `maxPositionEmbeddings`. */
  | { type: 'dynamic'; factor: number; maxPositionEmbeddings: number }
  /** Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth blend between. */
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | {
      type: 'yarn';
      /** Defaults to maxPositionEmbeddings / originalMaxPositionEmbeddings. */
      factor?: number;
      originalMaxPositionEmbeddings: number;
      maxPositionEmbeddings?: number;
      /** Scale applied to cos and sin; defaults to 0.1 * ln(factor) + 1 (or the mscale ratio). */
      attentionFactor?: number;
      betaFast?: number;
      betaSlow?: number;
      mscale?: number;
      mscaleAllDim?: number;
      /** Round the correction range to whole dims (default true). */
      truncate?: boolean;
    }
  | {
      type: 'longrope';
      /** Per-frequency divisors (rotaryDim / 2 each) for sequences within / beyond the original length. */
      shortFactor: readonly number[];
      longFactor: readonly number[];
      originalMaxPositionEmbeddings: number;
      /** Defaults to maxPositionEmbeddings / originalMaxPositionEmbeddings. */
      factor?: number;
      maxPositionEmbeddings?: number;
      /** Scale applied to cos and sin; defaults to sqrt(1 + ln(factor) / ln(original)). */
      attentionFactor?: number;
    };

export interface RopeOptions {
  /** Rotated dims per head: head_dim * partial_rotary_factor (even). */
  dim: number;
  /** rope_theta, the frequency base. */
  theta: number;
  /** Rows of the table: positions 0 .. maxPositions-1. */
  maxPositions: number;
  scaling?: RopeScaling;
  /**
   * Sequence length the table serves (the largest position id + 1): 'dynamic' and 'longrope'
   * depend on it, as the reference recomputes them per forward. Defaults to maxPositions.
   */
  seqLen?: number;
}

export interface RopeFrequencies {
  /** dim / 2 inverse frequencies, float32. */
  invFreq: Float32Array;
  /** Factor cos and sin are multiplied by (1 except for yarn and longrope). */
  attentionScaling: number;
}

const f = Math.fround;

function positive(name: string, value: number | undefined, integer = false): number {
  if (value === undefined || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UnsupportedError({ what: `rope ${name}`, got: value, supported: [integer ? 'a positive integer' : 'a positive number'], where: 'ropeTable' });
  }
  return value;
}

/** 1 / (base ** (2k / dim)) in float32, k < dim/2, as the reference computes it. */
function defaultInvFreq(base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const b = f(base);
  for (let k = 0; k < dim / 2; k++) out[k] = f(1 / f(Math.pow(b, f((2 * k) / dim))));
  return out;
}

/** base ** (2k / dim) in float32 (the yarn and longrope "pos_freqs"). */
function posFreqs(base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const b = f(base);
  for (let k = 0; k < dim / 2; k++) out[k] = f(Math.pow(b, f((2 * k) / dim)));
  return out;
}

function expandedFactor(s: { factor?: number; maxPositionEmbeddings?: number; originalMaxPositionEmbeddings: number }, type: string): number {
  if (s.factor !== undefined) return positive(`${type} factor`, s.factor);
  if (s.maxPositionEmbeddings === undefined) {
    throw new UnsupportedError({ what: `rope ${type} scaling without factor or maxPositionEmbeddings`, got: s, where: 'ropeTable' });
  }
  return positive(`${type} maxPositionEmbeddings`, s.maxPositionEmbeddings) / s.originalMaxPositionEmbeddings;
}

/** Inverse frequencies and the cos/sin scale for a rope configuration. */
export function ropeFrequencies(options: RopeOptions): RopeFrequencies {
  const dim = positive('dim', options.dim, true);
  if (dim % 2 !== 0) throw new ShapeMismatchError({ op: 'ropeTable', expected: 'an even rotary dim', got: dim });
  const theta = positive('theta', options.theta);
  const scaling: RopeScaling = options.scaling ?? { type: 'default' };
  const seqLen = options.seqLen ?? options.maxPositions;
  const half = dim / 2;
  switch (scaling.type) {
    case 'default':
      return { invFreq: defaultInvFreq(theta, dim), attentionScaling: 1 };
    case 'linear': {
      const factor = f(positive('linear factor', scaling.factor));
      return { invFreq: defaultInvFreq(theta, dim).map((v) => f(v / factor)), attentionScaling: 1 };
    }
    case 'dynamic': {
      const factor = positive('dynamic factor', scaling.factor);
      const maxPe = positive('dynamic maxPositionEmbeddings', scaling.maxPositionEmbeddings, true);
      if (dim <= 2) throw new ShapeMismatchError({ op: 'ropeTable', expected: 'a rotary dim above 2 for dynamic scaling', got: dim });
      const len = Math.max(seqLen, maxPe);
      const base = theta * ((factor * len) / maxPe - (factor - 1)) ** (dim / (dim - 2));
      return { invFreq: defaultInvFreq(base, dim), attentionScaling: 1 };
    }
    case 'llama3': {
      const factor = positive('llama3 factor', scaling.factor);
      const low = positive('llama3 lowFreqFactor', scaling.lowFreqFactor);
      const high = positive('llama3 highFreqFactor', scaling.highFreqFactor);
      const old = positive('llama3 originalMaxPositionEmbeddings', scaling.originalMaxPositionEmbeddings, true);
      const lowWavelen = f(old / low);
      const highWavelen = f(old / high);
      const inv = defaultInvFreq(theta, dim);
      const out = new Float32Array(half);
      for (let k = 0; k < half; k++) {
        const v = inv[k] ?? 0;
        // `scalar / tensor` is reciprocal(tensor) * scalar in the reference.
        const wavelen = f(f(1 / v) * f(2 * Math.PI));
        const scaled = wavelen > lowWavelen ? f(v / f(factor)) : v;
        const smooth = f(f(f(f(1 / wavelen) * f(old)) - f(low)) / f(high - low));
        const smoothed = f(f(f(f(1 - smooth) * scaled) / f(factor)) + f(smooth * scaled));
        const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
        out[k] = medium ? smoothed : scaled;
      }
      return { invFreq: out, attentionScaling: 1 };
    }
    case 'yarn': {
      const original = positive('yarn originalMaxPositionEmbeddings', scaling.originalMaxPositionEmbeddings, true);
      const factor = expandedFactor(scaling, 'yarn');
      const mscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      let attention = scaling.attentionFactor;
      if (attention === undefined) {
        attention = scaling.mscale && scaling.mscaleAllDim ? mscale(factor, scaling.mscale) / mscale(factor, scaling.mscaleAllDim) : mscale(factor);
      }
      const betaFast = scaling.betaFast || 32;
      const betaSlow = scaling.betaSlow || 1;
      const correctionDim = (rotations: number): number => (dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
      let lo = correctionDim(betaFast);
      let hi = correctionDim(betaSlow);
      if (scaling.truncate ?? true) {
        lo = Math.floor(lo);
        hi = Math.ceil(hi);
      }
      lo = Math.max(lo, 0);
      hi = Math.min(hi, dim - 1);
      if (lo === hi) hi += 0.001;
      const span = f(hi - lo);
      const pos = posFreqs(theta, dim);
      const out = new Float32Array(half);
      for (let k = 0; k < half; k++) {
        const p = pos[k] ?? 0;
        const extrapolation = f(1 / p);
        const interpolation = f(1 / f(f(factor) * p));
        const ramp = Math.min(1, Math.max(0, f(f(k - f(lo)) / span)));
        const keep = f(1 - ramp);
        out[k] = f(f(interpolation * f(1 - keep)) + f(extrapolation * keep));
      }
      return { invFreq: out, attentionScaling: attention };
    }
    case 'longrope': {
      const original = positive('longrope originalMaxPositionEmbeddings', scaling.originalMaxPositionEmbeddings, true);
      for (const [name, list] of [
        ['shortFactor', scaling.shortFactor],
        ['longFactor', scaling.longFactor],
      ] as const) {
        if (list.length !== half) throw new ShapeMismatchError({ op: 'ropeTable', expected: `longrope ${name} with ${half} entries (rotary dim ${dim} / 2)`, got: list.length });
      }
      const factor = expandedFactor(scaling, 'longrope');
      const attention = scaling.attentionFactor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
      const ext = seqLen > original ? scaling.longFactor : scaling.shortFactor;
      const pos = posFreqs(theta, dim);
      const out = new Float32Array(half);
      for (let k = 0; k < half; k++) out[k] = f(1 / f(f(ext[k] ?? NaN) * (pos[k] ?? 0)));
      return { invFreq: out, attentionScaling: attention };
    }
    default: {
      const type: unknown = (scaling as { type: unknown }).type;
      throw new UnsupportedError({ what: 'rope scaling type', got: type, supported: ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'], where: 'ropeTable' });
    }
  }
}

export interface HostRopeTable extends RopeFrequencies {
  /** [maxPositions, dim] row-major: cos(pos * invFreq) for both halves, times attentionScaling. */
  cos: Float32Array;
  sin: Float32Array;
}

/** The cos/sin tables on the host (float32, laid out as the rotary kernel reads them). */
export function ropeTableHost(options: RopeOptions): HostRopeTable {
  const freqs = ropeFrequencies(options);
  const rows = positive('maxPositions', options.maxPositions, true);
  const dim = options.dim;
  const half = dim / 2;
  const scale = f(freqs.attentionScaling);
  const cos = new Float32Array(rows * dim);
  const sin = new Float32Array(rows * dim);
  for (let p = 0; p < rows; p++) {
    const pos = f(p);
    for (let k = 0; k < half; k++) {
      const angle = f(pos * (freqs.invFreq[k] ?? 0));
      const c = f(f(Math.cos(angle)) * scale);
      const s = f(f(Math.sin(angle)) * scale);
      cos[p * dim + k] = c;
      cos[p * dim + k + half] = c;
      sin[p * dim + k] = s;
      sin[p * dim + k + half] = s;
    }
  }
  return { ...freqs, cos, sin };
}

/** cos/sin tables on the GPU, for rotary(). */
export interface RopeTable {
  /** [maxPositions, rotaryDim] f32. */
  cos: Tensor;
  sin: Tensor;
  attentionScaling: number;
}

/**
 * Builds the rotary tables for positions 0..maxPositions-1 and uploads them. Dispose `cos` and
 * `sin` when done (or keep() them for the life of a model).
 */
export function ropeTable(rt: Runtime, options: RopeOptions & { tag?: MemoryTag }): RopeTable {
  const host = ropeTableHost(options);
  const shape = [options.maxPositions, options.dim];
  const tag = options.tag ?? 'other';
  return {
    cos: fromArray(rt, host.cos, shape, 'f32', { tag, name: 'rope cos' }),
    sin: fromArray(rt, host.sin, shape, 'f32', { tag, name: 'rope sin' }),
    attentionScaling: host.attentionScaling,
  };
}
