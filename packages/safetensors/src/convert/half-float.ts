// bf16 and f16 <-> f32 conversions on raw 16-bit words: widening is exact, narrowing rounds to
// nearest even, keeps infinities, turns NaN into a quiet NaN and produces f16 subnormals.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0] ?? 0;
}

function bitsToF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0] ?? 0;
}

/** f32 bit pattern -> bf16 word. */
function bf16FromBits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) {
    // Truncating a NaN could clear every payload bit and leave an infinity; keep the sign and
    // the top payload bits and set the quiet bit instead.
    return ((bits >>> 16) | 0x0040) & 0xffff;
  }
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even; a carry out of
  // the mantissa bumps the exponent, and past the largest finite value lands on infinity.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 bit pattern -> f16 word. */
function f16FromBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Infinity stays infinity; NaN keeps its top payload bits with the quiet bit set.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const halfExp = exp - 127 + 15;
  if (halfExp >= 31) return sign | 0x7c00;
  if (halfExp <= 0) {
    // Subnormal result: the value in units of 2^-24 is the full significand shifted right.
    if (halfExp < -10) return sign;
    const significand = mant | 0x800000;
    const shift = 14 - halfExp;
    let q = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (q & 1) === 1)) q += 1;
    // q may round up to 0x400, which is exactly the smallest normal encoding.
    return sign | q;
  }
  let q = (halfExp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) === 1)) q += 1;
  // A carry out of the mantissa raises the exponent; from 30 it reaches 31, which is infinity.
  return sign | q;
}

/** bf16 word -> f32 bit pattern (exact). */
function bf16ToBits(w: number): number {
  return (w & 0xffff) << 16;
}

/** f16 word -> f32 bit pattern (exact). */
function f16ToBits(w: number): number {
  const sign = (w & 0x8000) << 16;
  const exp = (w >>> 10) & 0x1f;
  let mant = w & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: normalise the mantissa; every f16 subnormal is a normal f32.
  let e = -14;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e -= 1;
  }
  return (sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

function u32View(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** Rounds each f32 to the nearest bf16 (ties to even); returns raw bf16 words. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const bits = u32View(x);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16FromBits(bits[i] ?? 0);
  return out;
}

/** Widens raw bf16 words to f32 exactly. */
export function bf16ToF32(x: Uint16Array): Float32Array {
  const out = new Float32Array(x.length);
  const bits = u32View(out);
  for (let i = 0; i < x.length; i++) bits[i] = bf16ToBits(x[i] ?? 0);
  return out;
}

/** Rounds each f32 to the nearest f16 (ties to even, subnormals, overflow to infinity); returns raw f16 words. */
export function f32ToF16(x: Float32Array): Uint16Array {
  const bits = u32View(x);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16FromBits(bits[i] ?? 0);
  return out;
}

/** Widens raw f16 words to f32 exactly. */
export function f16ToF32(x: Uint16Array): Float32Array {
  const out = new Float32Array(x.length);
  const bits = u32View(out);
  for (let i = 0; i < x.length; i++) bits[i] = f16ToBits(x[i] ?? 0);
  return out;
}

/** The bf16 word nearest to `x` once `x` is rounded to f32, as a Float32Array store would. */
export function f32ToBf16Scalar(x: number): number {
  return bf16FromBits(f32Bits(x));
}

/** The value of a bf16 word. */
export function bf16ToF32Scalar(w: number): number {
  return bitsToF32(bf16ToBits(w));
}

/** The f16 word nearest to `x` once `x` is rounded to f32, as a Float32Array store would. */
export function f32ToF16Scalar(x: number): number {
  return f16FromBits(f32Bits(x));
}

/** The value of an f16 word. */
export function f16ToF32Scalar(w: number): number {
  return bitsToF32(f16ToBits(w));
}
