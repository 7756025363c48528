// quantize4bitGpu / dequantize4bitGpu against the CPU path (and so against bitsandbytes' CUDA
// kernel): the fixture inputs in f32, f16 and bf16, adversarial values (subnormals, infinities,
// NaN, all-zero and all-tiny blocks) at every block size, split dispatches, and the memory a
// quantized weight takes in the runtime's accounting.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { SafetensorsFile, f32ToBf16, f32ToF16 } from '@peft-ts/safetensors/node';
import { fromArray, type DType, type Runtime } from '@peft-ts/tensor';
import { randn, rng, testRuntime } from '@peft-ts/tensor/testing';
import { BLOCKSIZES, dequantize, quantize, quantizedBytes, type Quantized4bit, type QuantType, type QuantizeInput } from '../index.js';
import { BNB4BIT_FILE, INPUTS, bits } from '../test-fixtures.js';
import {
  dequantize4bitGpu,
  disposeQuantized4bit,
  downloadQuantized4bit,
  quantize4bitGpu,
  quantizedDeviceBytes,
  uploadQuantized4bit,
  type QuantizeGpuOptions,
} from './index.js';

type Half = 'f16' | 'bf16';

/** `quantize4bitGpu` on `values` uploaded as `dtype`, read back to the host form. */
async function gpuQuantize(rt: Runtime, values: Float32Array | Uint16Array, dtype: DType, options: QuantizeGpuOptions): Promise<Quantized4bit> {
  const w = fromArray(rt, values, [values.length], dtype);
  const q = await quantize4bitGpu(w, options);
  w.dispose();
  const host = await downloadQuantized4bit(q);
  disposeQuantized4bit(q);
  return host;
}

function expectSameState(got: Quantized4bit, want: Quantized4bit, label: string): void {
  expect({ label, shape: got.shape, dtype: got.dtype, type: got.quantType, bs: got.blocksize }).toEqual({
    label,
    shape: want.shape,
    dtype: want.dtype,
    type: want.quantType,
    bs: want.blocksize,
  });
  expect(firstDiff(got.packed, want.packed), `${label} packed`).toBe(-1);
  if (got.doubleQuant && want.doubleQuant) {
    expect(firstDiff(got.qabsmax, want.qabsmax), `${label} qabsmax`).toBe(-1);
    expect(firstDiff(bits(got.nestedAbsmax), bits(want.nestedAbsmax)), `${label} nested_absmax`).toBe(-1);
    expect(bits(Float32Array.of(got.offset)), `${label} offset`).toEqual(bits(Float32Array.of(want.offset)));
  } else if (!got.doubleQuant && !want.doubleQuant) {
    expect(firstDiff(bits(got.absmax), bits(want.absmax)), `${label} absmax`).toBe(-1);
  } else {
    throw new Error(`${label}: double quant ${got.doubleQuant} vs ${want.doubleQuant}`);
  }
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Bits of a dequantized output, with every NaN the same (payloads are not part of the contract). */
function canonical(x: Float32Array | Uint16Array): number[] {
  if (x instanceof Uint16Array) return Array.from(x, (w) => ((w & 0x7fff) > 0x7c00 ? 0x7e00 : w));
  return Array.from(bits(x), (b) => ((b & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : b));
}

/** Values built to hit every special path: subnormals, infinities, NaN, zeros, huge and tiny blocks. */
function adversarial(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = randn(n, seed);
  const u = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) {
    const block = Math.floor(i / 32) % 9;
    const p = r();
    if (block === 0) x[i] = 0; // all zero
    else if (block === 1) u[i] = (Math.floor(r() * 0x7fffff) | (p < 0.5 ? 0x80000000 : 0)) >>> 0; // all subnormal
    else if (block === 2) x[i] = (x[i] ?? 0) * 1e-38; // tiny, partly subnormal
    else if (block === 3) x[i] = (x[i] ?? 0) * 1e37; // huge: reciprocal near the subnormal range
    else if (block === 4 && p < 0.1) x[i] = p < 0.05 ? Infinity : -Infinity;
    else if (block === 5 && p < 0.1) x[i] = NaN;
    else if (block === 6) x[i] = p < 0.3 ? -0 : (x[i] ?? 0) * 1e-30; // negative zeros beside tiny values
    else if (block === 7 && p < 0.5) x[i] = (x[i] ?? 0) * 1e-44; // mixed scales within one block
  }
  return x;
}

describe('quantize4bitGpu is bit-identical to quantize()', () => {
  let rt: Runtime;
  let file: SafetensorsFile;
  beforeAll(async () => {
    rt = await testRuntime();
    file = await SafetensorsFile.open(BNB4BIT_FILE);
    return () => file.close();
  });

  const CASES = INPUTS.flatMap((input) =>
    (['nf4', 'fp4'] as const).flatMap((type) => [64, 128].flatMap((blocksize) => [false, true].map((dq) => ({ input, type, blocksize, dq })))),
  );

  it.each(CASES.map((c) => [`${c.input}.${c.type}.bs${c.blocksize}.${c.dq ? 'dq' : 'plain'}`, c] as const))(
    '%s (f32 input): equals quantize() and the CUDA kernel, and dequantizes identically',
    async (key, c) => {
      const input = await file.readF32(`${c.input}.input`);
      const shape = file.info(`${c.input}.input`).shape;
      const options = { type: c.type, blocksize: c.blocksize, doubleQuant: c.dq, shape };
      const want = quantize(input, options);
      const got = await gpuQuantize(rt, input, 'f32', options);
      expectSameState(got, want, key);
      // quantize() reproduces the CUDA kernel, so the GPU bytes are the kernel's bytes too.
      expect(firstDiff(got.packed, await file.readBytes(`${key}.cuda.packed`))).toBe(-1);

      const q = uploadQuantized4bit(rt, got);
      for (const to of ['f32', 'f16', 'bf16'] as const) {
        const t = dequantize4bitGpu(q, { dtype: to });
        expect(t.shape).toEqual(shape);
        const gpu = to === 'f32' ? ((await t.toArray()) as Float32Array) : ((await t.toRaw()) as Uint16Array);
        t.dispose();
        expect(firstDiff(canonical(gpu), canonical(dequantize(want, { to }))), `${key} dequantize ${to}`).toBe(-1);
      }
      disposeQuantized4bit(q);
    },
  );

  it.each(['f16', 'bf16'] as const)('%s inputs are widened exactly, as quantize() widens them', async (half: Half) => {
    for (const input of INPUTS) {
      const values = await file.readF32(`${input}.input`);
      const words = half === 'f16' ? f32ToF16(values) : f32ToBf16(values);
      for (const type of ['nf4', 'fp4'] as const) {
        for (const dq of [false, true]) {
          const options = { type, blocksize: 64, doubleQuant: dq };
          const want = quantize({ words, dtype: half } satisfies QuantizeInput, options);
          const got = await gpuQuantize(rt, words, half, options);
          expect(got.dtype).toBe(half === 'f16' ? 'float16' : 'bfloat16');
          expectSameState(got, want, `${input} ${half} ${type} dq=${dq}`);
        }
      }
    }
  });

  it('handles subnormals, infinities, NaN, zero and tiny blocks at every block size and odd lengths', async () => {
    const x = adversarial(9 * 4096 + 77, 5);
    for (const blocksize of BLOCKSIZES) {
      for (const type of ['nf4', 'fp4'] as QuantType[]) {
        for (const n of [x.length, 4097, 33, 1]) {
          const values = x.subarray(x.length - n);
          const options = { type, blocksize, doubleQuant: blocksize === 64 };
          const want = quantize(values, options);
          const got = await gpuQuantize(rt, values, 'f32', options);
          expectSameState(got, want, `${type} bs${blocksize} n=${n}`);
          const q = uploadQuantized4bit(rt, got);
          const back = dequantize4bitGpu(q, { dtype: 'f32' });
          expect(firstDiff(canonical((await back.toArray()) as Float32Array), canonical(dequantize(want))), `${type} bs${blocksize} n=${n} dequantize`).toBe(-1);
          back.dispose();
          disposeQuantized4bit(q);
        }
      }
    }
    // f16 words over their whole range: subnormal, infinite and NaN halves included.
    const words = Uint16Array.from({ length: 65536 }, (_, i) => (i * 40503) & 0xffff);
    for (const dtype of ['f16', 'bf16'] as const) {
      const want = quantize({ words, dtype }, { blocksize: 128 });
      expectSameState(await gpuQuantize(rt, words, dtype, { blocksize: 128 }), want, `${dtype} words`);
    }
  });

  it('splits work past the binding size limit without changing a byte', async () => {
    const x = randn(70_001, 21, 0.02);
    for (const dtype of ['f32', 'bf16'] as const) {
      const values = dtype === 'f32' ? x : f32ToBf16(x);
      const options = { blocksize: 64, doubleQuant: true };
      const whole = await gpuQuantize(rt, values, dtype, options);
      const split = await gpuQuantize(rt, values, dtype, { ...options, maxBindingBytes: 20_000 });
      expectSameState(split, whole, `${dtype} split`);
      const q = uploadQuantized4bit(rt, whole);
      const a = dequantize4bitGpu(q, { dtype: 'bf16' });
      const b = dequantize4bitGpu(q, { dtype: 'bf16', maxBindingBytes: 9_000 });
      expect(firstDiff((await a.toRaw()) as Uint16Array, (await b.toRaw()) as Uint16Array)).toBe(-1);
      for (const t of [a, b]) t.dispose();
      disposeQuantized4bit(q);
    }
  });

  it('costs 0.5 byte per parameter plus its block statistics in the weights accounting', async () => {
    const [rows, cols] = [384, 512];
    const n = rows * cols;
    const w = fromArray(rt, randn(n, 3, 0.02), [rows, cols], 'f16', { tag: 'other' });
    for (const doubleQuant of [true, false]) {
      const before = rt.memoryStats().byTag.weights;
      const q = await quantize4bitGpu(w, { doubleQuant });
      const used = rt.memoryStats().byTag.weights - before;
      const expected = quantizedBytes(n, { doubleQuant });
      // The code tables live in the shaders' table tensor, not beside every weight.
      expect(used).toBe(expected.total - expected.constants);
      expect(used).toBe(quantizedDeviceBytes(q));
      const bitsPerParam = (used * 8) / n;
      if (doubleQuant) expect(bitsPerParam).toBeCloseTo(4 + 8 / 64 + 32 / 16384, 6); // 4.127
      else expect(bitsPerParam).toBe(4.5);
      disposeQuantized4bit(q);
      expect(rt.memoryStats().byTag.weights).toBe(before);
    }
    w.dispose();
  });

  it('rejects what quantize() rejects, naming the op', async () => {
    const ints = fromArray(rt, [1, 2, 3, 4], [4], 'i32');
    await expect(quantize4bitGpu(ints)).rejects.toThrow(DTypeError);
    const w = fromArray(rt, randn(96, 1), [3, 32]);
    await expect(quantize4bitGpu(w, { blocksize: 48 })).rejects.toThrow(UnsupportedError);
    await expect(quantize4bitGpu(w, { type: 'int4' as QuantType })).rejects.toThrow(/quant type/);
    await expect(quantize4bitGpu(w, { shape: [5, 32] })).rejects.toThrow(ShapeMismatchError);
    const q = await quantize4bitGpu(w, { blocksize: 32 });
    const wrong = { ...q, shape: [4, 32] };
    expect(() => dequantize4bitGpu(wrong)).toThrow(/dequantize4bitGpu packed/);
    disposeQuantized4bit(q);
    for (const t of [ints, w]) t.dispose();
  });
});
