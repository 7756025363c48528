// Float64 references for the unary ops, including an erf accurate to float64 round-off.

/**
 * erf in float64: the series 2/sqrt(pi) * exp(-x^2) * sum 2^n x^(2n+1) / (2n+1)!! (positive terms,
 * no cancellation) below |x| = 3, and 1 - erfc from erfc's continued fraction above.
 */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 3) return Math.sign(x) * (1 - erfc64(a));
  let term = a;
  let sum = a;
  for (let n = 1; n < 200; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

/** erfc in float64, with full relative accuracy in the tail. */
export function erfc64(x: number): number {
  if (x < 3) return 1 - erf64(x);
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up.
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

const sigmoid64 = (x: number): number => 1 / (1 + Math.exp(-x));
const ncdf64 = (x: number): number => (x >= 0 ? 0.5 * (1 + erf64(x / Math.SQRT2)) : 0.5 * erfc64(-x / Math.SQRT2));

export type UnaryRefOp = 'scale' | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'square' | 'sigmoid' | 'silu' | 'tanh' | 'relu' | 'erf' | 'gelu' | 'gelu_tanh';

export const UNARY_REF: Record<UnaryRefOp, (x: number, alpha: number) => number> = {
  scale: (x, alpha) => x * alpha,
  neg: (x) => -x,
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  sigmoid: sigmoid64,
  silu: (x) => x * sigmoid64(x),
  tanh: (x) => Math.tanh(x),
  relu: (x) => (x < 0 ? 0 : x),
  erf: erf64,
  gelu: (x) => x * ncdf64(x),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
};

export function unaryRef(op: UnaryRefOp, x: ArrayLike<number>, alpha = 0): Float64Array {
  const f = UNARY_REF[op];
  return Float64Array.from({ length: x.length }, (_, i) => f(x[i] ?? 0, alpha));
}

export function siluMulRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => {
    const a = gate[i] ?? 0;
    return a * sigmoid64(a) * (up[i] ?? 0);
  });
}
