// The 4-bit index rules and code tables as the GPU kernels see them: the CPU path's thresholds
// turned into integer comparisons on f32 bit patterns, and one small table tensor per runtime.
import { fromArray, type Runtime, type Tensor } from '@peft-ts/tensor';
import { DYNAMIC_MAP_SIGNED, FP4_CODE, NF4_CODE, NF4_THRESHOLDS, fp4Index, type QuantType } from '../index.js';

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

export function f32Bits(x: number): number {
  scratch[0] = x;
  return scratchBits[0] ?? 0;
}

export function bitsF32(bits: number): number {
  scratchBits[0] = bits;
  return scratch[0] ?? NaN;
}

/** The unsigned key that orders f32 bit patterns like their values (the WGSL `fb_key`). */
export function orderKey(bits: number): number {
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}u`;

/**
 * FP4 magnitude patterns in increasing value with, for each after the first, the smallest
 * positive f32 bit pattern `fp4Index` maps to it: found by bisection over the CPU rule itself,
 * so the GPU thresholds cannot drift from it.
 */
export function fp4Steps(): { pattern: number; from: number }[] {
  const order = [0, 1, 2, 3, 4, 5, 6, 7].sort((a, b) => (FP4_CODE[a] ?? 0) - (FP4_CODE[b] ?? 0));
  const rank = (bits: number): number => order.indexOf(fp4Index(bitsF32(bits)) & 7);
  const steps: { pattern: number; from: number }[] = [];
  for (let k = 1; k < order.length; k++) {
    let lo = 0;
    let hi = 0x3f800000;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (rank(mid) >= k) hi = mid;
      else lo = mid + 1;
    }
    steps.push({ pattern: order[k] ?? 0, from: lo });
  }
  return steps;
}

/**
 * WGSL `fn q4_index(s: u32) -> u32`: the 4-bit index of a scaled value given as f32 bits, exactly
 * as `nf4Index`/`fp4Index` pick it (NaN gives 0, a value on a threshold takes the lower index).
 */
export function indexWgsl(type: QuantType): string {
  if (type === 'nf4') {
    const terms = Array.from(NF4_THRESHOLDS, (t) => `u32(k > ${hex(orderKey(f32Bits(t)))})`);
    return /* wgsl */ `
fn q4_index(s: u32) -> u32 {
  if ((s & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  let k = fb_key(s);
  return ${terms.join(' + ')};
}`;
  }
  const chain = fp4Steps()
    .reverse()
    .map((s) => `if (a >= ${hex(s.from)}) { m = ${s.pattern}u; }`)
    .join(' else ');
  return /* wgsl */ `
fn q4_index(s: u32) -> u32 {
  let a = s & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0u; }
  var m = 0u;
  ${chain}
  return select(0u, 8u, (s >> 31u) == 1u && a != 0u) + m;
}`;
}

/** Offsets into the table tensor. */
export const TABLE_NF4 = 0;
export const TABLE_FP4 = 16;
export const TABLE_DYNAMIC = 32;
const TABLE_LENGTH = 32 + 256;

export function codeBase(type: QuantType): number {
  return type === 'nf4' ? TABLE_NF4 : TABLE_FP4;
}

const tablesByRuntime = new WeakMap<Runtime, Tensor>();

/**
 * f32 [288]: the NF4 and FP4 dequantization codes and the signed dynamic map, uploaded once per
 * runtime (tag 'other') and bound by the kernels that decode 4-bit data.
 */
export function codeTables(rt: Runtime): Tensor {
  const known = tablesByRuntime.get(rt);
  if (known && !known.disposed) return known;
  const data = new Float32Array(TABLE_LENGTH);
  data.set(NF4_CODE, TABLE_NF4);
  data.set(FP4_CODE, TABLE_FP4);
  data.set(DYNAMIC_MAP_SIGNED, TABLE_DYNAMIC);
  const t = fromArray(rt, data, [TABLE_LENGTH], 'f32', { tag: 'other', name: 'nf4-quant code tables' }).keep();
  tablesByRuntime.set(rt, t);
  return t;
}
