// transformers' `quantization_config` for bitsandbytes 4-bit models: the fields
// BitsAndBytesConfig.to_dict() writes into config.json, read and written under their own names.
import { FormatError } from '@peft-ts/errors';
import { QUANT_TYPES, type QuantType } from '../codes/four-bit-codes.js';
import type { SourceDType } from '../quantize/types.js';
import { PyFloat, type PyJsonObject } from './py-json.js';
import { show } from './quant-state.js';

const COMPUTE_DTYPES: readonly SourceDType[] = ['float32', 'float16', 'bfloat16'];
const QUANT_STORAGES = ['uint8', 'int8', 'float16', 'bfloat16', 'float32'] as const;

export type QuantStorage = (typeof QUANT_STORAGES)[number];

export interface BnbQuantizationConfig {
  /** `bnb_4bit_quant_type`. */
  quantType: QuantType;
  /** `bnb_4bit_use_double_quant`. */
  doubleQuant: boolean;
  /** `bnb_4bit_compute_dtype`: the dtype matmuls run in. */
  computeDType: SourceDType;
  /** `bnb_4bit_quant_storage`: the dtype the packed bytes are stored as. */
  quantStorage: QuantStorage;
  /** `llm_int8_skip_modules`: modules kept unquantized (null: transformers' default choice). */
  skipModules: string[] | null;
  /** `llm_int8_threshold` (an 8-bit setting transformers writes for 4-bit models too). */
  llmInt8Threshold: number;
  /** `llm_int8_enable_fp32_cpu_offload`. */
  llmInt8EnableFp32CpuOffload: boolean;
  /** `llm_int8_has_fp16_weight`. */
  llmInt8HasFp16Weight: boolean;
}

/** transformers' defaults for `BitsAndBytesConfig(load_in_4bit=True)`. */
export function defaultQuantizationConfig(overrides: Partial<BnbQuantizationConfig> = {}): BnbQuantizationConfig {
  return {
    quantType: 'nf4',
    doubleQuant: false,
    computeDType: 'float32',
    quantStorage: 'uint8',
    skipModules: null,
    llmInt8Threshold: 6,
    llmInt8EnableFp32CpuOffload: false,
    llmInt8HasFp16Weight: false,
    ...overrides,
  };
}

/** The object transformers writes under `quantization_config` (keys sorted when dumped). */
export function quantizationConfigJson(c: BnbQuantizationConfig): PyJsonObject {
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: c.computeDType,
    bnb_4bit_quant_storage: c.quantStorage,
    bnb_4bit_quant_type: c.quantType,
    bnb_4bit_use_double_quant: c.doubleQuant,
    llm_int8_enable_fp32_cpu_offload: c.llmInt8EnableFp32CpuOffload,
    llm_int8_has_fp16_weight: c.llmInt8HasFp16Weight,
    llm_int8_skip_modules: c.skipModules === null ? null : [...c.skipModules],
    llm_int8_threshold: new PyFloat(c.llmInt8Threshold),
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: 'bitsandbytes',
  };
}

/**
 * Reads `quantization_config` from a parsed config.json. Fields transformers would fill with a
 * default may be absent; present ones must have the right type, and the config must describe
 * a bitsandbytes 4-bit model.
 */
export function parseQuantizationConfig(config: unknown, file: string): BnbQuantizationConfig {
  const root = config as Record<string, unknown> | null;
  const q = root && typeof root === 'object' ? root.quantization_config : undefined;
  const field = (k: string) => `quantization_config.${k}`;
  if (typeof q !== 'object' || q === null || Array.isArray(q)) {
    throw new FormatError({ file, field: 'quantization_config', expected: 'an object (a bitsandbytes 4-bit model)', got: q });
  }
  const c = q as Record<string, unknown>;
  if (c.quant_method !== 'bitsandbytes') {
    throw new FormatError({ file, field: field('quant_method'), expected: '"bitsandbytes"', got: show(c.quant_method) });
  }
  const in4 = c.load_in_4bit ?? c._load_in_4bit;
  if (in4 !== true) {
    throw new FormatError({ file, field: field('load_in_4bit'), expected: 'true (a 4-bit model)', got: show(in4) });
  }
  const pick = <T>(key: string, ok: (v: unknown) => v is T, fallback: T, expected: string): T => {
    const v = c[key];
    if (v === undefined) return fallback;
    if (!ok(v)) throw new FormatError({ file, field: field(key), expected, got: show(v) });
    return v;
  };
  const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
  const d = defaultQuantizationConfig();
  const quantType = pick(
    'bnb_4bit_quant_type',
    (v): v is QuantType => v === 'nf4' || v === 'fp4',
    d.quantType,
    `one of ${QUANT_TYPES.join(', ')}`,
  );
  const computeDType = pick(
    'bnb_4bit_compute_dtype',
    (v): v is SourceDType => COMPUTE_DTYPES.includes(v as SourceDType),
    d.computeDType,
    `one of ${COMPUTE_DTYPES.join(', ')}`,
  );
  const quantStorage = pick(
    'bnb_4bit_quant_storage',
    (v): v is QuantStorage => (QUANT_STORAGES as readonly unknown[]).includes(v),
    d.quantStorage,
    `one of ${QUANT_STORAGES.join(', ')}`,
  );
  const skipModules = pick(
    'llm_int8_skip_modules',
    (v): v is string[] | null => v === null || (Array.isArray(v) && v.every((s) => typeof s === 'string')),
    d.skipModules,
    'null or a list of module names',
  );
  return {
    quantType,
    doubleQuant: pick('bnb_4bit_use_double_quant', isBool, d.doubleQuant, 'a boolean'),
    computeDType,
    quantStorage,
    skipModules: skipModules === null ? null : [...skipModules],
    llmInt8Threshold: pick('llm_int8_threshold', (v): v is number => typeof v === 'number', d.llmInt8Threshold, 'a number'),
    llmInt8EnableFp32CpuOffload: pick('llm_int8_enable_fp32_cpu_offload', isBool, d.llmInt8EnableFp32CpuOffload, 'a boolean'),
    llmInt8HasFp16Weight: pick('llm_int8_has_fp16_weight', isBool, d.llmInt8HasFp16Weight, 'a boolean'),
  };
}
