import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { SafetensorsFile, serializeSafetensors, type TensorSource } from '@peft-ts/safetensors/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PyFloat,
  dequantize,
  parseJsonDocument,
  parseQuantizationConfig,
  pyFloatRepr,
  pyJsonDumps,
  quantStateJson,
  quantize,
  quantizationConfigJson,
  quantizedTensorSources,
  readQuantized4bit,
  type QuantType,
} from '../index.js';
import { BNB, BNB4BIT_FILE, LLAMA_BNB_DIR, bits, countDiff, withFile } from '../test-fixtures.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nf4-serialize-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('Python float and JSON formatting', () => {
  it('prints floats as repr() does', () => {
    // Expected strings are Python 3's repr of the same doubles.
    const table: [number, string][] = [
      [0.1, '0.1'],
      [1e-5, '1e-05'],
      [1e-6, '1e-06'],
      [6, '6.0'],
      [10000, '10000.0'],
      [0.051255226135253906, '0.051255226135253906'],
      [1e16, '1e+16'],
      [1.5e16, '1.5e+16'],
      [1234567890123456, '1234567890123456.0'],
      [123456789012345680, '1.2345678901234568e+17'],
      [0.0001, '0.0001'],
      [0.00012345, '0.00012345'],
      [-0, '-0.0'],
      [0, '0.0'],
      [5e-324, '5e-324'],
      [1e22, '1e+22'],
      [-2.5e-5, '-2.5e-05'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [2 ** 53, '9007199254740992.0'],
      [0.30000000000000004, '0.30000000000000004'],
      [NaN, 'NaN'],
      [-Infinity, '-Infinity'],
    ];
    for (const [x, s] of table) expect(pyFloatRepr(x)).toBe(s);
  });

  it('dumps like json.dumps(indent=2, sort_keys=True), escaping non-ASCII', () => {
    const text = pyJsonDumps({ d: { x: null, é: 'ü\n' }, c: [], b: {}, a: [1, 2], f: new PyFloat(6) }, { indent: 2, sortKeys: true });
    expect(text).toBe(
      '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": [],\n  "d": {\n    "x": null,\n    "\\u00e9": "\\u00fc\\n"\n  },\n  "f": 6.0\n}',
    );
  });

  it('writes the fixture config.json back byte for byte, number tokens kept', async () => {
    const text = await readFile(join(LLAMA_BNB_DIR, 'config.json'), 'utf8');
    expect(`${pyJsonDumps(parseJsonDocument(text, 'config.json'), { indent: 2, sortKeys: true })}\n`).toBe(text);
  });

  it('reports malformed JSON as a FormatError naming the file', () => {
    expect(() => parseJsonDocument('{"a": 1,', 'x/config.json')).toThrow(/x\/config.json: \(document\): expected valid JSON/);
  });
});

describe('quant_state JSON', () => {
  it('matches the bytes bitsandbytes wrote for every llama weight', async () => {
    await withFile(join(LLAMA_BNB_DIR, 'model.safetensors'), async (f) => {
      const keys = f.names().filter((n) => n.endsWith('.quant_state.bitsandbytes__nf4'));
      expect(keys.length).toBe(14);
      for (const key of keys) {
        const weight = key.slice(0, key.indexOf('.quant_state'));
        const q = await readQuantized4bit(f, weight);
        expect(quantStateJson(q)).toBe(new TextDecoder().decode(await f.readBytes(key)));
      }
    });
  });
});

describe('Linear4bit state dicts (linear4bit-{nf4,fp4}.safetensors)', () => {
  it.each(['nf4', 'fp4'] as QuantType[])('%s: quantizing the weight reproduces every stored tensor', async (type) => {
    const weight = await withFile(BNB4BIT_FILE, (f) => f.readF32('gate_proj_160x64.input'));
    const q = quantize(weight, { type, doubleQuant: true, shape: [160, 64] });
    await withFile(`${BNB}linear4bit-${type}.safetensors`, async (f) => {
      const ours = quantizedTensorSources('weight', q);
      expect(ours.map((s) => s.name).sort()).toEqual(f.names().filter((n) => n.startsWith('weight')).sort());
      for (const s of ours) {
        const info = f.info(s.name);
        expect([s.name, s.dtype, s.shape]).toEqual([s.name, info.dtype, info.shape]);
        const data = s.data as ArrayBufferView;
        expect(countDiff(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), await f.readBytes(s.name))).toBe(0);
      }
    });
  });

  it.each(['nf4', 'fp4'] as QuantType[])('%s: reads the state and reproduces the layer output test.y', async (type) => {
    await withFile(`${BNB}linear4bit-${type}.safetensors`, async (f) => {
      const q = await readQuantized4bit(f, 'weight');
      expect([q.quantType, q.blocksize, q.dtype, q.shape, q.doubleQuant]).toEqual([type, 64, 'float32', [160, 64], true]);
      const w = dequantize(q);
      const x = await f.readF32('test.x');
      const b = await f.readF32('bias');
      const y = await f.readF32('test.y');
      for (let r = 0; r < 3; r++) {
        for (let o = 0; o < 160; o++) {
          let acc = b[o] ?? 0;
          for (let i = 0; i < 64; i++) acc += (x[r * 64 + i] ?? 0) * (w[o * 64 + i] ?? 0);
          const want = y[r * 160 + o] ?? NaN;
          expect(Math.abs(acc - want)).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(want));
        }
      }
    });
  });
});

describe('malformed quantized state', () => {
  const base = async (): Promise<TensorSource[]> => {
    const weight = await withFile(BNB4BIT_FILE, (f) => f.readF32('gate_proj_160x64.input'));
    return quantizedTensorSources('layer.weight', quantize(weight, { doubleQuant: true, shape: [160, 64] }));
  };
  const withState = async (edit: (sources: TensorSource[]) => TensorSource[], name: string) => {
    const path = join(tmp, `${name}.safetensors`);
    await writeFile(path, serializeSafetensors(edit(await base())));
    const file = await SafetensorsFile.open(path);
    try {
      return await readQuantized4bit(file, 'layer.weight').then(
        () => undefined,
        (e: unknown) => e,
      );
    } finally {
      await file.close();
    }
  };
  const replaceJson = (json: string) => (sources: TensorSource[]) =>
    sources.map((s) => {
      if (!s.name.includes('quant_state')) return s;
      const bytes = new TextEncoder().encode(json);
      return { ...s, shape: [bytes.length], data: bytes };
    });

  it('names the file and the key for JSON that does not parse', async () => {
    const e = await withState(replaceJson('{"quant_type": "nf4", "blocksize": 64,'), 'truncated');
    expect(e).toBeInstanceOf(FormatError);
    const err = e as FormatError;
    expect(err.file).toMatch(/truncated\.safetensors$/);
    expect(err.field).toBe('layer.weight.quant_state.bitsandbytes__nf4');
    expect(err.message).toMatch(/expected a JSON object, got "\{\\"quant_type\\": \\"nf4\\", \\"blocksize\\": 64,"/);
  });

  it('rejects an unknown quant type, naming the JSON field', async () => {
    const e = await withState(replaceJson('{"quant_type": "int4", "blocksize": 64, "dtype": "float32", "shape": [160, 64]}'), 'int4');
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toMatch(
      /int4\.safetensors: layer\.weight\.quant_state\.bitsandbytes__nf4 -> "quant_type": expected one of nf4, fp4, got "int4"/,
    );
  });

  it('rejects a quant type that contradicts the key', async () => {
    const e = await withState(replaceJson('{"quant_type": "fp4", "blocksize": 64, "dtype": "float32", "shape": [160, 64]}'), 'mismatch');
    expect((e as Error).message).toMatch(/expected the type the key names \("nf4"\), got "fp4"/);
  });

  it('rejects an absmax of the wrong length, naming the absmax key', async () => {
    const e = await withState(
      (s) => s.map((t) => (t.name === 'layer.weight.absmax' ? { ...t, shape: [159], data: new Uint8Array(159) } : t)),
      'short-absmax',
    );
    expect(e).toBeInstanceOf(FormatError);
    const err = e as FormatError;
    expect(err.field).toBe('layer.weight.absmax');
    expect(err.message).toMatch(/expected 160 elements for shape \[160, 64\] in blocks of 64, got 159 \(shape \[159\]\)/);
  });

  it('rejects a missing nested tensor and a plain absmax in the wrong dtype', async () => {
    const e1 = await withState((s) => s.filter((t) => t.name !== 'layer.weight.nested_absmax'), 'no-nested');
    expect((e1 as FormatError).field).toBe('layer.weight.nested_absmax');
    // A state without nested fields says the absmax is float32; this one is still 8-bit codes.
    const e2 = await withState(replaceJson('{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [160, 64]}'), 'plain-u8');
    expect((e2 as Error).message).toMatch(/layer\.weight\.absmax: expected dtype F32, got U8/);
  });

  it('rejects a packed weight whose size does not fit the shape', async () => {
    const e = await withState(
      (s) => s.map((t) => (t.name === 'layer.weight' ? { ...t, shape: [5000, 1], data: new Uint8Array(5000) } : t)),
      'short-weight',
    );
    expect((e as FormatError).field).toBe('layer.weight');
    expect((e as Error).message).toMatch(/expected 5120 bytes of packed 4-bit data/);
  });
});

describe('quantization_config', () => {
  it('reads the fixture config and writes the same object back', async () => {
    const text = await readFile(join(LLAMA_BNB_DIR, 'config.json'), 'utf8');
    const config = JSON.parse(text) as { quantization_config: unknown };
    const q = parseQuantizationConfig(config, 'config.json');
    expect(q).toEqual({
      quantType: 'nf4',
      doubleQuant: true,
      computeDType: 'float32',
      quantStorage: 'uint8',
      skipModules: null,
      llmInt8Threshold: 6,
      llmInt8EnableFp32CpuOffload: false,
      llmInt8HasFp16Weight: false,
    });
    const doc = parseJsonDocument(text, 'config.json') as Record<string, unknown>;
    expect(pyJsonDumps(quantizationConfigJson(q), { indent: 2, sortKeys: true })).toBe(
      pyJsonDumps(doc.quantization_config as never, { indent: 2, sortKeys: true }),
    );
  });

  it('names the field when the config is not a bitsandbytes 4-bit one', () => {
    const bad = (qc: unknown) => () => parseQuantizationConfig({ quantization_config: qc }, 'm/config.json');
    expect(bad(undefined)).toThrow(/m\/config.json: quantization_config: expected an object/);
    expect(bad({ quant_method: 'gptq' })).toThrow(/quantization_config.quant_method: expected "bitsandbytes", got "gptq"/);
    expect(bad({ quant_method: 'bitsandbytes', load_in_8bit: true })).toThrow(/load_in_4bit: expected true/);
    expect(bad({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'int4' })).toThrow(
      /bnb_4bit_quant_type: expected one of nf4, fp4, got "int4"/,
    );
  });

  it('keeps the quantized tensors of a file bit-exact through read and dequantize', async () => {
    await withFile(join(LLAMA_BNB_DIR, 'model.safetensors'), async (f) => {
      const q = await readQuantized4bit(f, 'model.layers.0.self_attn.q_proj.weight');
      if (!q.doubleQuant) throw new Error('expected double quant');
      expect(bits(Float32Array.of(q.offset))).toEqual(bits(Float32Array.of(0.05285033956170082)));
      expect(dequantize(q).length).toBe(64 * 64);
    });
  });
});
