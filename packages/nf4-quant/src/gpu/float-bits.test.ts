// The integer-only float helpers the 4-bit kernels use, against JavaScript's float arithmetic:
// reciprocal and product over random bit patterns spanning the whole f32 range (subnormals,
// powers of two, infinities), f16 widening and f16/bf16 rounding over every interesting word.
import { beforeAll, describe, expect, it } from 'vitest';
import { f16ToF32, f32ToBf16, f32ToF16 } from '@peft-ts/safetensors';
import { empty, fromArray, grid1d, type Runtime } from '@peft-ts/tensor';
import { rng, testRuntime } from '@peft-ts/tensor/testing';
import { floatBitsSpec, type FloatBitsOp } from './float-bits.js';

async function run(rt: Runtime, op: FloatBitsOp, x: Uint32Array, y: Uint32Array = new Uint32Array(x.length)): Promise<Uint32Array> {
  const tx = fromArray(rt, x, [x.length], 'u32');
  const ty = fromArray(rt, y, [y.length], 'u32');
  const out = empty(rt, [x.length], 'u32');
  rt.dispatch(floatBitsSpec(op), [tx.binding(), ty.binding(), out.binding()], [x.length], grid1d(x.length, 256));
  const got = (await out.toArray()) as Uint32Array;
  for (const t of [tx, ty, out]) t.dispose();
  return got;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const valueOf = (bits: number): number => {
  u32[0] = bits;
  return f32[0] ?? NaN;
};
const bitsOf = (value: number): number => {
  f32[0] = value;
  return u32[0] ?? 0;
};
const isNaNBits = (b: number): boolean => (b & 0x7fffffff) > 0x7f800000;

/** Random f32 bit patterns: uniform over all patterns, plus every exponent with edge mantissas. */
function patterns(count: number, seed: number): Uint32Array {
  const r = rng(seed);
  const out: number[] = [];
  for (let e = 0; e < 256; e++) {
    for (const m of [0, 1, 2, 0x400000, 0x7fffff, 0x7ffffe, 0x555555, 0x2aaaab]) {
      out.push((e << 23) | m, (0x80000000 | (e << 23) | m) >>> 0);
    }
  }
  while (out.length < count) out.push(Math.floor(r() * 2 ** 32) >>> 0);
  return Uint32Array.from(out);
}

function firstMismatch(got: Uint32Array, want: Uint32Array, inputs: string[]): string | null {
  for (let i = 0; i < got.length; i++) {
    const g = got[i] ?? 0;
    const w = want[i] ?? 0;
    if (g === w || (isNaNBits(g) && isNaNBits(w))) continue;
    return `at ${i} (${inputs[i] ?? ''}): got ${g.toString(16)}, want ${w.toString(16)}`;
  }
  return null;
}

const hex = (b: number) => (b >>> 0).toString(16).padStart(8, '0');

describe('float-bits WGSL helpers', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('fb_recip is Math.fround(1 / a) for every positive f32 class', async () => {
    const x = patterns(60_000, 11).map((b) => b & 0x7fffffff).filter((b) => b <= 0x7f800000);
    const want = x.map((b) => bitsOf(1 / valueOf(b)));
    const got = await run(rt, 'recip', x);
    expect(firstMismatch(got, want, [...x].map(hex))).toBeNull();
  });

  it('fb_mul is Math.fround(x * y), subnormal and overflowing results included', async () => {
    const a = patterns(60_000, 12);
    const r = rng(13);
    // Half the pairs are random; half multiply by a nearby reciprocal (what quantization does),
    // which lands many products on rounding ties and just under 1.
    const b = a.map((bits, i) => (i % 2 === 0 ? Math.floor(r() * 2 ** 32) >>> 0 : bitsOf(1 / valueOf((bits & 0x7fffffff) + Math.floor(r() * 5)))));
    const want = a.map((bits, i) => bitsOf(valueOf(bits) * valueOf(b[i] ?? 0)));
    const got = await run(rt, 'mul', a, b);
    expect(firstMismatch(got, want, [...a].map((v, i) => `${hex(v)} * ${hex(b[i] ?? 0)}`))).toBeNull();
    // Products straddling the subnormal range, where a second rounding would show.
    const tiny = Uint32Array.from({ length: 20_000 }, () => ((Math.floor(r() * 40) + 40) << 23) | Math.floor(r() * 0x800000));
    const tiny2 = Uint32Array.from({ length: 20_000 }, () => ((Math.floor(r() * 40) + 30) << 23) | Math.floor(r() * 0x800000));
    const wantTiny = tiny.map((v, i) => bitsOf(valueOf(v) * valueOf(tiny2[i] ?? 0)));
    expect(firstMismatch(await run(rt, 'mul', tiny, tiny2), wantTiny, [...tiny].map(hex))).toBeNull();
  });

  it('fb_f16_widen, fb_to_f16 and fb_to_bf16 match @peft-ts/safetensors for every word', async () => {
    const words = Uint32Array.from({ length: 65536 }, (_, i) => i);
    const widened = await run(rt, 'f16-widen', words);
    const wantWide = new Uint32Array(f16ToF32(Uint16Array.from(words)).buffer);
    expect(firstMismatch(widened, wantWide, [...words].map(hex))).toBeNull();

    const x = patterns(60_000, 14);
    const toF16 = await run(rt, 'to-f16', x);
    expect(firstMismatch(toF16, Uint32Array.from(f32ToF16(new Float32Array(x.buffer))), [...x].map(hex))).toBeNull();
    const toBf16 = await run(rt, 'to-bf16', x);
    expect(firstMismatch(toBf16, Uint32Array.from(f32ToBf16(new Float32Array(x.buffer))), [...x].map(hex))).toBeNull();
  });
});
