// Float32 constants written as their IEEE-754 bit patterns, so tables and thresholds are exact
// and never depend on how a decimal literal happens to round.

export function f32FromBits(bits: readonly number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

export function f32FromBit(bits: number): number {
  return f32FromBits([bits])[0] ?? Number.NaN;
}

/** The bit pattern of `x` rounded to float32, as a hex string (for messages and tests). */
export function f32Hex(x: number): string {
  return (new Uint32Array(Float32Array.of(x).buffer)[0] ?? 0).toString(16).padStart(8, '0');
}
