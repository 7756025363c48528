// The 4-bit code tables (NF4, FP4) and the decision thresholds bitsandbytes' CUDA kernel uses
// to map a scaled value in [-1, 1] to a 4-bit index.
import { f32FromBits } from './f32-bits.js';

/** The two 4-bit data types bitsandbytes supports. */
export type QuantType = 'nf4' | 'fp4';

export const QUANT_TYPES: readonly QuantType[] = Object.freeze(['nf4', 'fp4']);

// NormalFloat4: quantiles of N(0, 1) rescaled to [-1, 1], with an exact zero at index 7.
const NF4_BITS = [
  0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
  0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
];

// The CUDA kernel's fixed decimal thresholds between neighbouring NF4 codes. Five of them sit
// one ulp away from the float32 midpoints, so midpoints would not reproduce its bytes.
const NF4_THRESHOLD_BITS = [
  0xbf591cd9, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
  0x3df64863, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d03, 0x3f248daf, 0x3f5c89d9,
];

/** FP4 magnitudes by 3-bit pattern, before dividing by 12 (bit 3 of the 4-bit code is the sign). */
const FP4_MAGNITUDES = [0, 0.0625, 8, 12, 4, 6, 2, 3];

export const NF4_CODE: Float32Array = f32FromBits(NF4_BITS);
export const NF4_THRESHOLDS: Float32Array = f32FromBits(NF4_THRESHOLD_BITS);

/**
 * FP4 values by 4-bit pattern as dequantization produces them: pattern 8 is -0.0, because the
 * kernel applies the sign bit to the magnitude.
 */
export const FP4_CODE: Float32Array = Float32Array.from({ length: 16 }, (_, p) => {
  const magnitude = Math.fround((FP4_MAGNITUDES[p & 7] ?? 0) / 12);
  return p & 8 ? -magnitude : magnitude;
});

/**
 * FP4 table as bitsandbytes stores it in `weight.quant_map`: built from Python integers, so its
 * pattern 8 is +0.0 rather than the -0.0 dequantization yields.
 */
export const FP4_QUANT_MAP: Float32Array = Float32Array.from(FP4_CODE, (v) => (v === 0 ? 0 : v));

// The CUDA kernel's FP4 magnitude thresholds: decimal float literals in its decision tree,
// rounded to float32 as the compiler rounds them (bit patterns in the comments).
const FP4_ABOVE_011 = Math.fround(0.8333333); // 3f555555
const FP4_ABOVE_010 = Math.fround(0.583333); // 3f155550
const FP4_ABOVE_101 = Math.fround(0.4166667); // 3ed55556
const FP4_ABOVE_100 = Math.fround(0.29166667); // 3e955555
const FP4_ABOVE_111 = Math.fround(0.20833333); // 3e555555
const FP4_ABOVE_110 = Math.fround(0.0859375); // 3db00000
const FP4_ABOVE_001 = Math.fround(0.00260417); // 3b2aaab9

/**
 * NF4 index of a scaled value: how many thresholds it strictly exceeds, so a value on a
 * threshold takes the lower index and NaN (what an all-zero block scales to) takes index 0.
 */
export function nf4Index(scaled: number): number {
  // Four comparisons of a binary search over the 15 sorted thresholds.
  const t = NF4_THRESHOLDS;
  let i = scaled > (t[7] ?? 0) ? 8 : 0;
  if (scaled > (t[i + 3] ?? 0)) i += 4;
  if (scaled > (t[i + 1] ?? 0)) i += 2;
  if (scaled > (t[i] ?? 0)) i += 1;
  return i;
}

/** FP4 pattern of a scaled value: sign bit only for values below zero, magnitude by threshold. */
export function fp4Index(scaled: number): number {
  const sign = scaled < 0 ? 8 : 0;
  const a = Math.abs(scaled);
  let m: number;
  if (a > FP4_ABOVE_011) m = 0b011;
  else if (a > FP4_ABOVE_010) m = 0b010;
  else if (a > FP4_ABOVE_101) m = 0b101;
  else if (a > FP4_ABOVE_100) m = 0b100;
  else if (a > FP4_ABOVE_111) m = 0b111;
  else if (a > FP4_ABOVE_110) m = 0b110;
  else if (a > FP4_ABOVE_001) m = 0b001;
  else m = 0b000;
  return sign + m;
}

/** The dequantization table of a quant type. */
export function codeTable(type: QuantType): Float32Array {
  return type === 'nf4' ? NF4_CODE : FP4_CODE;
}

/** The table bitsandbytes writes as `weight.quant_map` for a quant type. */
export function quantMapTable(type: QuantType): Float32Array {
  return type === 'nf4' ? NF4_CODE : FP4_QUANT_MAP;
}
