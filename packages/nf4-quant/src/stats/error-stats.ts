// Reconstruction error statistics, to compare quantizers on one's own weights.
import { ShapeMismatchError } from '@peft-ts/errors';

export interface ErrorStats {
  /** Root mean squared error. */
  rmse: number;
  /** Largest absolute error. */
  maxAbsError: number;
  /** Mean absolute error. */
  meanAbsError: number;
  /** Signal-to-noise ratio in dB: 10 log10(sum x^2 / sum (x - x')^2); Infinity when exact. */
  snrDb: number;
}

/** Error of `approx` against `reference`, accumulated in float64. */
export function errorStats(reference: Float32Array, approx: Float32Array): ErrorStats {
  if (reference.length !== approx.length) {
    throw new ShapeMismatchError({ op: 'errorStats', expected: [reference.length], got: [approx.length] });
  }
  let signal = 0;
  let noise = 0;
  let absSum = 0;
  let maxAbs = 0;
  for (let i = 0; i < reference.length; i++) {
    const x = reference[i] ?? 0;
    const e = x - (approx[i] ?? 0);
    signal += x * x;
    noise += e * e;
    const a = Math.abs(e);
    absSum += a;
    if (a > maxAbs) maxAbs = a;
  }
  const n = reference.length;
  return {
    rmse: n === 0 ? 0 : Math.sqrt(noise / n),
    maxAbsError: maxAbs,
    meanAbsError: n === 0 ? 0 : absSum / n,
    snrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
  };
}
