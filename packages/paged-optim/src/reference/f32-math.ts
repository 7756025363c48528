// Float32 arithmetic in plain TypeScript for the references: float64 operations rounded to f32
// after each step (exact for +, -, *, / and sqrt of f32 inputs), and a correctly rounded fma.

export const f = Math.fround;

const scratch = new Float32Array(1);
const bits = new Uint32Array(scratch.buffer);

/** The f32 next to `x` (an f32) away from zero (up = true) or toward it. */
function neighbour(x: number, awayFromZero: boolean): number {
  scratch[0] = x;
  bits[0] = (bits[0] ?? 0) + (awayFromZero ? 1 : -1);
  return scratch[0] ?? NaN;
}

/**
 * fmaf(a, b, c) = a*b + c rounded once to f32. The product of two f32 values is exact in float64;
 * the float64 sum is exact up to an error that TwoSum recovers, which decides the rounding when
 * the float64 sum lands exactly halfway between two f32 values.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb);
  const r = f(s);
  if (err === 0 || r === s || !Number.isFinite(s)) return r;
  const other = Math.abs(r) > Math.abs(s) ? neighbour(r, false) : neighbour(r, true);
  if ((r + other) / 2 !== s) return r;
  // Exactly halfway in float64: the sign of the lost part picks the side.
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}
