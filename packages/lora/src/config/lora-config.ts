// LoraConfig with PEFT's field names and defaults, validation with errors naming the field,
// PEFT's module-targeting rules, and the adapter_config.json PEFT writes and reads.
import { FormatError, UnsupportedError } from '@peft-ts/errors';

export type LoraBias = 'none' | 'all' | 'lora_only';
export type InitLoraWeights = boolean | 'gaussian';

/** The fields PEFT's LoraConfig has that we act on, in PEFT's names. */
export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Module short names / full names, a regex string matched against the whole module name, or 'all-linear'. */
  target_modules: string[] | string | null;
  bias: LoraBias;
  use_rslora: boolean;
  fan_in_fan_out: boolean;
  init_lora_weights: InitLoraWeights;
  modules_to_save: string[] | null;
  layers_to_transform: number[] | number | null;
  layers_pattern: string[] | string | null;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  exclude_modules: string[] | string | null;
  base_model_name_or_path: string | null;
  task_type: string | null;
}

export const LORA_DEFAULTS: LoraConfig = {
  r: 8,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: null,
  bias: 'none',
  use_rslora: false,
  fan_in_fan_out: false,
  init_lora_weights: true,
  modules_to_save: null,
  layers_to_transform: null,
  layers_pattern: null,
  rank_pattern: {},
  alpha_pattern: {},
  exclude_modules: null,
  base_model_name_or_path: null,
  task_type: 'CAUSAL_LM',
};

/** PEFT's default target_modules per model_type (its TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export const DEFAULT_TARGETS: Record<string, string[]> = {
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  phi3: ['qkv_proj'],
  gpt2: ['c_attn'],
};

/** Options that PEFT has but that change the method itself; refused rather than ignored. */
const REFUSED: Record<string, (v: unknown) => boolean> = {
  use_dora: (v) => v === true,
  use_qalora: (v) => v === true,
  lora_bias: (v) => v === true,
  layer_replication: (v) => v !== null && v !== undefined,
  target_parameters: (v) => v !== null && v !== undefined,
  trainable_token_indices: (v) => v !== null && v !== undefined,
  alora_invocation_tokens: (v) => v !== null && v !== undefined,
  use_bdlora: (v) => v !== null && v !== undefined && v !== false,
};

type Json = Record<string, unknown>;

function expect(file: string, field: string, ok: boolean, expected: string, got: unknown): void {
  if (!ok) throw new FormatError({ file, field, expected, got: typeof got === 'string' ? JSON.stringify(got) : got });
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isNumberMap = (v: unknown): v is Record<string, number> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'number' && x > 0);

/** Validates a partial config (user options or a parsed adapter_config.json) and fills PEFT's defaults. */
export function resolveLoraConfig(input: Partial<LoraConfig> | Json, file = 'LoraConfig'): LoraConfig {
  const j = input as Json;
  if (j.peft_type !== undefined && j.peft_type !== 'LORA') {
    throw new UnsupportedError({ what: 'peft_type', got: j.peft_type, supported: ['LORA'], where: file });
  }
  for (const [key, refused] of Object.entries(REFUSED)) {
    if (refused(j[key])) throw new UnsupportedError({ what: `${key}`, got: j[key], where: file });
  }
  const c: LoraConfig = { ...LORA_DEFAULTS };
  const num = (key: keyof LoraConfig, ok: (v: number) => boolean, expected: string) => {
    const v = j[key];
    if (v === undefined) return;
    expect(file, key, typeof v === 'number' && ok(v), expected, v);
    (c as unknown as Json)[key] = v;
  };
  num('r', (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  num('lora_alpha', (v) => v > 0, 'a positive number');
  num('lora_dropout', (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  if (j.lora_alpha === undefined) c.lora_alpha = LORA_DEFAULTS.lora_alpha;
  if (j.target_modules !== undefined) {
    const v = j.target_modules;
    expect(file, 'target_modules', v === null || typeof v === 'string' || isStringList(v), 'a list of module names, a regex string, or "all-linear"', v);
    c.target_modules = v as LoraConfig['target_modules'];
  }
  if (j.bias !== undefined) {
    expect(file, 'bias', j.bias === 'none' || j.bias === 'all' || j.bias === 'lora_only', '"none", "all" or "lora_only"', j.bias);
    c.bias = j.bias as LoraBias;
  }
  for (const key of ['use_rslora', 'fan_in_fan_out'] as const) {
    if (j[key] !== undefined) {
      expect(file, key, typeof j[key] === 'boolean', 'true or false', j[key]);
      c[key] = j[key] as boolean;
    }
  }
  if (j.init_lora_weights !== undefined) {
    const v = j.init_lora_weights;
    expect(file, 'init_lora_weights', typeof v === 'boolean' || v === 'gaussian', 'true, false or "gaussian"', v);
    c.init_lora_weights = v as InitLoraWeights;
  }
  if (j.modules_to_save !== undefined) {
    expect(file, 'modules_to_save', j.modules_to_save === null || isStringList(j.modules_to_save), 'a list of module names or null', j.modules_to_save);
    c.modules_to_save = j.modules_to_save as string[] | null;
  }
  if (j.layers_to_transform !== undefined) {
    const v = j.layers_to_transform;
    expect(
      file,
      'layers_to_transform',
      v === null || (typeof v === 'number' && Number.isInteger(v)) || (Array.isArray(v) && v.every((x) => Number.isInteger(x))),
      'a layer index, a list of layer indices, or null',
      v,
    );
    c.layers_to_transform = v as LoraConfig['layers_to_transform'];
  }
  for (const key of ['layers_pattern', 'exclude_modules'] as const) {
    if (j[key] !== undefined) {
      expect(file, key, j[key] === null || typeof j[key] === 'string' || isStringList(j[key]), 'a string, a list of strings, or null', j[key]);
      c[key] = j[key] as string[] | string | null;
    }
  }
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    if (j[key] !== undefined && j[key] !== null) {
      expect(file, key, isNumberMap(j[key]), 'an object of module pattern -> positive number', j[key]);
      c[key] = { ...(j[key] as Record<string, number>) };
    }
  }
  if (j.base_model_name_or_path !== undefined) c.base_model_name_or_path = (j.base_model_name_or_path as string | null) ?? null;
  if (j.task_type !== undefined) c.task_type = (j.task_type as string | null) ?? null;
  return c;
}

/** PEFT's pattern lookup for rank_pattern/alpha_pattern: the key matches the end of the module name at a dot boundary. */
export function patternValue(patterns: Record<string, number>, moduleName: string): number | undefined {
  for (const [pattern, value] of Object.entries(patterns)) {
    if (new RegExp(`(^|.*\\.)${pattern}$`).test(moduleName)) return value;
  }
  return undefined;
}

/** Rank, alpha and the LoRA scale for one module (rank/alpha patterns and rsLoRA applied). */
export function moduleHyperparameters(c: LoraConfig, moduleName: string): { r: number; alpha: number; scale: number } {
  const r = patternValue(c.rank_pattern, moduleName) ?? c.r;
  const alpha = patternValue(c.alpha_pattern, moduleName) ?? c.lora_alpha;
  return { r, alpha, scale: c.use_rslora ? alpha / Math.sqrt(r) : alpha / r };
}

const layerIndex = (name: string, patterns: string[] | null): number | null => {
  const alternatives = patterns ?? ['layers', 'h', 'blocks', 'layer'];
  for (const p of alternatives) {
    const m = new RegExp(`(?:^|\\.)${p}\\.(\\d+)\\.`).exec(name);
    if (m?.[1] !== undefined) return Number(m[1]);
  }
  return null;
};

function matchesAny(name: string, spec: string[] | string): boolean {
  if (typeof spec === 'string') return new RegExp(`^(?:${spec})$`).test(name);
  return spec.some((t) => name === t || name.endsWith(`.${t}`));
}

/**
 * PEFT's target selection over the model's linear module names: a list matches a whole name or a
 * dot-suffix, a string is a regex over the whole name, 'all-linear' is every linear but the
 * output head; layers_to_transform keeps only the given decoder layers; exclude_modules removes.
 */
export function selectTargetModules(c: LoraConfig, linearNames: readonly string[], modelType: string): string[] {
  const spec = c.target_modules ?? DEFAULT_TARGETS[modelType];
  if (!spec) throw new UnsupportedError({ what: 'model without default target_modules', got: modelType, where: 'LoraConfig.target_modules' });
  let chosen = spec === 'all-linear' ? linearNames.filter((n) => n !== 'lm_head') : linearNames.filter((n) => matchesAny(n, spec));
  if (c.layers_to_transform !== null) {
    const wanted = new Set(Array.isArray(c.layers_to_transform) ? c.layers_to_transform : [c.layers_to_transform]);
    const patterns = c.layers_pattern === null ? null : Array.isArray(c.layers_pattern) ? c.layers_pattern : [c.layers_pattern];
    chosen = chosen.filter((n) => {
      const i = layerIndex(n, patterns);
      return i !== null && wanted.has(i);
    });
  }
  if (c.exclude_modules !== null) {
    const ex = c.exclude_modules;
    chosen = chosen.filter((n) => !matchesAny(n, ex));
  }
  if (chosen.length === 0) {
    const shorts = [...new Set(linearNames.map((n) => n.slice(n.lastIndexOf('.') + 1)))];
    throw new FormatError({
      file: 'LoraConfig',
      field: 'target_modules',
      expected: `names that match linear modules of this model (${shorts.join(', ')})`,
      got: JSON.stringify(spec),
    });
  }
  return chosen;
}

/**
 * adapter_config.json as PEFT 0.21 writes it: every LoraConfig field, sorted keys, two-space
 * indent. Fields we do not use carry PEFT's defaults so PEFT reads the file unchanged. A regex
 * string is kept; a list and 'all-linear' are written as the module names they resolved to, as
 * PEFT does (vLLM and llama.cpp's converter read names, not 'all-linear').
 */
export function adapterConfigJson(c: LoraConfig, targets: readonly string[]): string {
  const shortTargets =
    typeof c.target_modules === 'string' && c.target_modules !== 'all-linear'
      ? c.target_modules
      : [...new Set(targets.map((t) => t.slice(t.lastIndexOf('.') + 1)))].sort();
  const full: Json = {
    alora_invocation_tokens: null,
    alpha_pattern: c.alpha_pattern,
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: c.base_model_name_or_path,
    bias: c.bias,
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: c.exclude_modules,
    fan_in_fan_out: c.fan_in_fan_out,
    inference_mode: true,
    init_lora_weights: c.init_lora_weights,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: c.layers_pattern,
    layers_to_transform: c.layers_to_transform,
    loftq_config: {},
    lora_alpha: c.lora_alpha,
    lora_bias: false,
    lora_dropout: c.lora_dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: c.modules_to_save,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: '0.21.0',
    qalora_group_size: 16,
    r: c.r,
    rank_pattern: c.rank_pattern,
    revision: null,
    target_modules: shortTargets,
    target_parameters: null,
    task_type: c.task_type,
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: c.use_rslora,
    velora_config: null,
  };
  const sorted = Object.fromEntries(Object.keys(full).sort().map((k) => [k, full[k]]));
  return `${JSON.stringify(sorted, null, 2)}`;
}
