import { readFile } from 'node:fs/promises';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, type SafetensorsFile } from '@peft-ts/safetensors';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DYNAMIC_MAP_SIGNED,
  absmaxMean,
  blockAbsmax,
  dequantize,
  dynamicIndex,
  quantize,
  quantizeBlockwise8,
  quantizedBytes,
  quantizedTensorSources,
  type Quantized4bit,
  type QuantType,
} from '../index.js';
import { BNB, BNB4BIT_FILE, INPUTS, bits, countDiff } from '../test-fixtures.js';
import { SafetensorsFile as File } from '@peft-ts/safetensors/node';

interface Case {
  input: (typeof INPUTS)[number];
  type: QuantType;
  blocksize: number;
  dq: boolean;
}
const CASES: Case[] = INPUTS.flatMap((input) =>
  (['nf4', 'fp4'] as const).flatMap((type) =>
    [64, 128].flatMap((blocksize) => [false, true].map((dq) => ({ input, type, blocksize, dq }))),
  ),
);
const caseKey = (c: Case) => `${c.input}.${c.type}.bs${c.blocksize}.${c.dq ? 'dq' : 'plain'}`;

let file: SafetensorsFile;
let meta: { packed_bytes_differing_cuda_vs_default: Record<string, number> };
beforeAll(async () => {
  file = await File.open(BNB4BIT_FILE);
  meta = JSON.parse(await readFile(`${BNB}meta.json`, 'utf8')) as typeof meta;
  return () => file.close();
});

async function run(c: Case): Promise<{ q: Quantized4bit; input: Float32Array }> {
  const info = file.info(`${c.input}.input`);
  const input = await file.readF32(`${c.input}.input`);
  return { q: quantize(input, { type: c.type, blocksize: c.blocksize, doubleQuant: c.dq, shape: info.shape }), input };
}

describe('quantize against the CUDA kernel (bnb4bit.safetensors)', () => {
  it.each(CASES.map((c) => [caseKey(c), c] as const))('%s: packed bytes and statistics are bit-identical', async (_, c) => {
    const { q } = await run(c);
    const k = `${caseKey(c)}.cuda`;
    expect(countDiff(q.packed, await file.readBytes(`${k}.packed`))).toBe(0);
    if (!c.dq) {
      if (q.doubleQuant) throw new Error('expected plain state');
      expect(bits(q.absmax)).toEqual(bits(await file.readF32(`${k}.absmax`)));
    } else {
      if (!q.doubleQuant) throw new Error('expected double-quantized state');
      expect(countDiff(q.qabsmax, await file.readBytes(`${k}.qabsmax`))).toBe(0);
      expect(bits(q.nestedAbsmax)).toEqual(bits(await file.readF32(`${k}.nested_absmax`)));
      expect(bits(Float32Array.of(q.offset))).toEqual(bits(await file.readF32(`${k}.nested_offset`)));
    }
    expect(bits(dequantize(q))).toEqual(bits(await file.readF32(`${k}.dequantized`)));
  });

  it('differs from the pure-torch backend exactly where the two backends differ', async () => {
    // Our bytes are the CUDA bytes, so their distance to the torch backend's bytes is the
    // CUDA-vs-torch distance meta.json records: 0 for NF4 except the all-zero block, many for FP4.
    const counts: Record<string, { cuda: number; cpu: number }> = {};
    for (const c of CASES) {
      const { q } = await run(c);
      const k = caseKey(c);
      counts[k] = {
        cuda: countDiff(q.packed, await file.readBytes(`${k}.cuda.packed`)),
        cpu: countDiff(q.packed, await file.readBytes(`${k}.cpu.packed`)),
      };
      expect(counts[k]).toEqual({ cuda: 0, cpu: meta.packed_bytes_differing_cuda_vs_default[k] });
    }
    expect(counts['heavy_tail_4096.fp4.bs64.plain']).toEqual({ cuda: 0, cpu: 1008 });
    expect(counts['with_zero_block_256.nf4.bs64.plain']).toEqual({ cuda: 0, cpu: 32 });
  });

  it('stores NF4 index 0 for an all-zero block and still dequantizes it to zeros', async () => {
    const { q } = await run({ input: 'with_zero_block_256', type: 'nf4', blocksize: 64, dq: false });
    expect(Array.from(q.packed.slice(0, 32))).toEqual(new Array<number>(32).fill(0));
    // Code -1 times absmax 0: negative zeros, as the kernel writes them.
    expect(Array.from(dequantize(q).slice(0, 64)).every((v) => Object.is(v, -0))).toBe(true);
  });

  it('packs an odd length with the missing element as a scaled 0.0 in the low nibble', async () => {
    const { q } = await run({ input: 'normal_odd_999', type: 'nf4', blocksize: 64, dq: false });
    expect(q.packed.length).toBe(500);
    expect((q.packed[499] ?? 0) & 15).toBe(7);
    expect(dequantize(q).length).toBe(999);
  });
});

describe('absmaxMean (the double-quant offset)', () => {
  const ulpsApart = (a: number, b: number) => Math.abs((new Int32Array(Float32Array.of(a).buffer)[0] ?? 0) - (new Int32Array(Float32Array.of(b).buffer)[0] ?? 0));

  it('is within 2 ulps of the nested_offset bitsandbytes stored on CUDA for every fixture vector', async () => {
    const apart: number[] = [];
    for (const c of CASES.filter((x) => x.dq)) {
      const { q } = await run({ ...c, dq: false });
      if (q.doubleQuant) throw new Error('expected plain state');
      apart.push(ulpsApart(absmaxMean(q.absmax), (await file.readF32(`${caseKey(c)}.cuda.nested_offset`))[0] ?? NaN));
    }
    expect(apart).toHaveLength(24);
    expect(Math.max(...apart)).toBeLessThanOrEqual(2);
  });

  it('is within its stated float32 error bound of the exact mean, for any length', () => {
    // The guarantee the README states: |offset - mean| <= ((1 + g)(1 + u)^2 - 1) mean, with
    // u = 2^-24 and g = d u / (1 - d u) for d = ceil(n / 8) + 2 roundings on a term's path
    // (its partial sum, three folds), the reciprocal and the product adding one rounding each.
    const u = 2 ** -24;
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (const n of [1, 2, 7, 8, 9, 63, 64, 65, 160, 999, 4096, 65_537, 262_144]) {
      const v = Float32Array.from({ length: n }, () => Math.fround(1e-3 + rand() * (rand() < 0.01 ? 40 : 0.2)));
      const exact = v.reduce((a, b) => a + b, 0) / n;
      const d = Math.ceil(n / 8) + 2;
      const g = (d * u) / (1 - d * u);
      const bound = ((1 + g) * (1 + u) ** 2 - 1) * exact;
      const got = absmaxMean(v);
      expect(Math.abs(got - exact), `n=${n}`).toBeLessThanOrEqual(bound);
      expect(Math.fround(got)).toBe(got);
    }
  });
});

describe('dynamicIndex (8-bit nested codes)', () => {
  it('is the nearest signed-map code away from exact midpoints', () => {
    const map = DYNAMIC_MAP_SIGNED;
    let checked = 0;
    for (let k = 0; k < 20000; k++) {
      const x = Math.fround(Math.sin(k * 12.9898) * 1.02);
      let best = 0;
      for (let i = 1; i < 256; i++) if (Math.abs((map[i] ?? 0) - x) < Math.abs((map[best] ?? 0) - x)) best = i;
      const got = dynamicIndex(x, map);
      const tie = Math.abs((map[got] ?? 0) - x) === Math.abs((map[best] ?? 0) - x);
      expect(got === best || tie).toBe(true);
      checked++;
    }
    expect(checked).toBe(20000);
    expect(dynamicIndex(0, map)).toBe(127);
    expect(dynamicIndex(1, map)).toBe(255);
    expect(dynamicIndex(-1, map)).toBe(0);
    expect(dynamicIndex(NaN, map)).toBe(0);
  });

  it('keeps the index the search stopped on at an exact float32 midpoint', () => {
    // Between map[128] and map[129] the search ends on 128 from above and returns it at the midpoint.
    const lo = DYNAMIC_MAP_SIGNED[128] ?? NaN;
    const hi = DYNAMIC_MAP_SIGNED[129] ?? NaN;
    const mid = Math.fround(Math.fround(lo + hi) * 0.5);
    const at = dynamicIndex(mid, DYNAMIC_MAP_SIGNED);
    expect([128, 129]).toContain(at);
    expect(dynamicIndex(Math.fround(mid * (1 + 2 ** -20)), DYNAMIC_MAP_SIGNED)).toBe(129);
    expect(dynamicIndex(Math.fround(mid * (1 - 2 ** -20)), DYNAMIC_MAP_SIGNED)).toBe(128);
  });

  it('quantizes blockwise with the float32 reciprocal of each block absmax', () => {
    const v = Float32Array.from([0.5, -0.25, 0.125, 0, -1, 0.75]);
    const { codes, absmax } = quantizeBlockwise8(v, DYNAMIC_MAP_SIGNED, 4);
    expect(Array.from(absmax)).toEqual([0.5, 1]);
    expect(codes[0]).toBe(255);
    expect(codes[3]).toBe(127);
    expect(codes[4]).toBe(0);
  });
});

describe('16-bit inputs and outputs', () => {
  it('quantizes f16/bf16 words as their exact float32 values and records the dtype', async () => {
    const x = await file.readF32('gate_proj_160x64.input');
    for (const [dtype, words, widened, name] of [
      ['bf16', f32ToBf16(x), bf16ToF32(f32ToBf16(x)), 'bfloat16'],
      ['f16', f32ToF16(x), f16ToF32(f32ToF16(x)), 'float16'],
    ] as const) {
      const q = quantize({ words, dtype }, { doubleQuant: true, shape: [160, 64] });
      const ref = quantize(widened, { doubleQuant: true, shape: [160, 64] });
      expect(q.dtype).toBe(name);
      expect(countDiff(q.packed, ref.packed)).toBe(0);
      expect(bits(blockAbsmax(q))).toEqual(bits(blockAbsmax(ref)));
    }
  });

  it('rounds dequantized values to f16/bf16 words to nearest even', async () => {
    const x = await file.readF32('q_proj_64x64.input');
    const q = quantize(x, { type: 'fp4' });
    const f32 = dequantize(q);
    expect(dequantize(q, { to: 'bf16' })).toEqual(f32ToBf16(f32));
    expect(dequantize(q, { to: 'f16' })).toEqual(f32ToF16(f32));
  });
});

describe('quantize input checks', () => {
  const x = Float32Array.from({ length: 128 }, (_, i) => i / 128);
  it('rejects block sizes and types the kernels do not have', () => {
    expect(() => quantize(x, { blocksize: 48 })).toThrow(UnsupportedError);
    expect(() => quantize(x, { blocksize: 8192 })).toThrow(/blocksize 8192; supported: 32, 64/);
    expect(() => quantize(x, { type: 'int4' as QuantType })).toThrow(/quant type "int4"; supported: nf4, fp4/);
  });
  it('rejects a shape that does not hold the data, and empty input', () => {
    expect(() => quantize(x, { shape: [3, 40] })).toThrow(ShapeMismatchError);
    expect(() => quantize(new Float32Array(0))).toThrow(/at least one element/);
  });
  it('rejects arrays of other types instead of converting them', () => {
    expect(() => quantize(new Float64Array(4) as unknown as Float32Array)).toThrow(DTypeError);
    expect(() => quantize({ words: new Uint16Array(4), dtype: 'f8' } as never)).toThrow(/'f16' or 'bf16', got f8/);
  });
  it('checks the absmax length of a hand-built state before dequantizing', () => {
    const q = quantize(x);
    if (q.doubleQuant) throw new Error('expected plain state');
    expect(() => dequantize({ ...q, absmax: q.absmax.slice(1) })).toThrow(/dequantize absmax: shape mismatch, expected \[2\], got \[1\]/);
  });
});

describe('quantizedBytes', () => {
  it('is 0.5 byte per parameter plus 4 bytes per 64, or 1 byte per 64 and 4 per 16384 with double quant', () => {
    const n = 4096 * 4096;
    expect(quantizedBytes(n)).toEqual({ packed: n / 2, absmax: (n / 64) * 4, nestedAbsmax: 0, constants: 64, total: n / 2 + n / 16 + 64 });
    expect(quantizedBytes(n, { doubleQuant: true })).toEqual({
      packed: n / 2,
      absmax: n / 64,
      nestedAbsmax: (n / 16384) * 4,
      constants: 64 + 1024,
      total: n / 2 + n / 64 + n / 4096 + 1088,
    });
    expect(quantizedBytes(1000, { blocksize: 128 }).absmax).toBe(8 * 4);
  });

  it('matches the tensors actually serialized, JSON state aside', async () => {
    const x = await file.readF32('normal_odd_999.input');
    for (const doubleQuant of [false, true]) {
      const q = quantize(x, { doubleQuant });
      const stored = quantizedTensorSources('w', q)
        .filter((s) => !s.name.includes('quant_state'))
        .reduce((sum, s) => sum + (s.data as ArrayBufferView).byteLength, 0);
      expect(stored).toBe(quantizedBytes(999, { doubleQuant }).total);
    }
  });
});
