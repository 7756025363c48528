// Float64 reference for rope inverse frequencies, written straight from the published formulas
// (no float32 rounding), to check the float32 table builder against.
import type { RopeOptions } from './rope-table.js';

export function invFreqRef(o: RopeOptions): { invFreq: Float64Array; attention: number } {
  const dim = o.dim;
  const half = dim / 2;
  const s = o.scaling ?? { type: 'default' as const };
  const seqLen = o.seqLen ?? o.maxPositions;
  const plain = (base: number) => Float64Array.from({ length: half }, (_, k) => 1 / base ** ((2 * k) / dim));
  switch (s.type) {
    case 'default':
      return { invFreq: plain(o.theta), attention: 1 };
    case 'linear':
      return { invFreq: plain(o.theta).map((v) => v / s.factor), attention: 1 };
    case 'dynamic': {
      const len = Math.max(seqLen, s.maxPositionEmbeddings);
      const base = o.theta * ((s.factor * len) / s.maxPositionEmbeddings - (s.factor - 1)) ** (dim / (dim - 2));
      return { invFreq: plain(base), attention: 1 };
    }
    case 'llama3': {
      const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
      const inv = plain(o.theta).map((v) => {
        const wavelen = (2 * Math.PI) / v;
        if (wavelen < highWavelen) return v;
        if (wavelen > lowWavelen) return v / s.factor;
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        return (1 - smooth) * (v / s.factor) + smooth * v;
      });
      return { invFreq: inv, attention: 1 };
    }
    case 'yarn': {
      const factor = s.factor ?? (s.maxPositionEmbeddings ?? NaN) / s.originalMaxPositionEmbeddings;
      const m = (x: number, k = 1) => (x <= 1 ? 1 : 0.1 * k * Math.log(x) + 1);
      const attention = s.attentionFactor ?? (s.mscale && s.mscaleAllDim ? m(factor, s.mscale) / m(factor, s.mscaleAllDim) : m(factor));
      const cd = (rot: number) => (dim * Math.log(s.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(o.theta));
      const truncate = s.truncate ?? true;
      let lo = cd(s.betaFast ?? 32);
      let hi = cd(s.betaSlow ?? 1);
      if (truncate) {
        lo = Math.floor(lo);
        hi = Math.ceil(hi);
      }
      lo = Math.max(lo, 0);
      hi = Math.min(hi, dim - 1);
      if (lo === hi) hi += 0.001;
      const inv = plain(o.theta).map((v, k) => {
        const ramp = Math.min(1, Math.max(0, (k - lo) / (hi - lo)));
        // ramp 0 keeps the original frequency, ramp 1 interpolates it by the factor.
        return (v / factor) * ramp + v * (1 - ramp);
      });
      return { invFreq: inv, attention };
    }
    case 'longrope': {
      const factor = s.factor ?? (s.maxPositionEmbeddings ?? NaN) / s.originalMaxPositionEmbeddings;
      const attention = s.attentionFactor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(s.originalMaxPositionEmbeddings)));
      const ext = seqLen > s.originalMaxPositionEmbeddings ? s.longFactor : s.shortFactor;
      return { invFreq: plain(o.theta).map((v, k) => v / (ext[k] ?? NaN)), attention };
    }
  }
}
