// The fine-tuning configuration (a JSON/YAML file and command-line flags share it): every key
// validated before any GPU work, with errors naming the key, what was expected and what was found.
import { FormatError } from '@peft-ts/errors';

export type Method = 'lora' | 'qlora';
export type OptimizerName = 'adamw' | 'adamw8bit' | 'paged_adamw' | 'paged_adamw8bit' | 'sgd';

export interface FinetuneConfig {
  /** Hugging Face model directory. */
  model: string;
  /** Alpaca/Dolly/chat/ShareGPT JSON or JSONL file. */
  data: string;
  output: string;
  method: Method;
  template: 'auto' | 'alpaca' | 'chat' | 'model';
  trainOn: 'response' | 'all';
  /** Invalid records: 'error' (default) fails listing them all, 'skip' trains without them. */
  onInvalid: 'error' | 'skip';
  r: number;
  alpha: number;
  dropout: number;
  targets: 'all-linear' | string[];
  /** PEFT modules_to_save: modules trained in full and saved with the adapter (e.g. embed_tokens). */
  modulesToSave: string[] | null;
  lr: number;
  schedule: 'constant' | 'linear' | 'cosine';
  warmupRatio: number;
  warmupSteps: number;
  epochs: number;
  maxSteps: number | null;
  batchSize: number;
  gradientAccumulation: number;
  maxLength: number;
  pack: boolean;
  maxGradNorm: number;
  optimizer: OptimizerName;
  weightDecay: number;
  /** GPU budget for optimizer state in MiB (paged optimizers), null = unlimited. */
  optimizerBudgetMb: number | null;
  validationSplit: number;
  evalEvery: number | null;
  earlyStoppingPatience: number | null;
  saveEvery: number | null;
  resume: string | null;
  /** Replace an earlier run's files in a non-empty output directory (else such a directory is refused). */
  overwrite: boolean;
  seed: number;
  gradientCheckpointing: boolean;
  /** Storage of the residual stream between layers: 'f16' halves the activations checkpointing keeps. */
  activationDtype: 'f32' | 'f16';
  quantType: 'nf4' | 'fp4';
  doubleQuant: boolean;
  blocksize: number;
}

export const DEFAULT_CONFIG: Omit<FinetuneConfig, 'model' | 'data'> = {
  output: 'peft-ts-output',
  method: 'qlora',
  template: 'auto',
  trainOn: 'response',
  onInvalid: 'error',
  r: 16,
  alpha: 32,
  dropout: 0.05,
  targets: 'all-linear',
  modulesToSave: null,
  lr: 2e-4,
  schedule: 'cosine',
  warmupRatio: 0.03,
  warmupSteps: 0,
  epochs: 1,
  maxSteps: null,
  batchSize: 4,
  gradientAccumulation: 4,
  maxLength: 512,
  pack: false,
  maxGradNorm: 1,
  optimizer: 'paged_adamw',
  weightDecay: 0,
  optimizerBudgetMb: null,
  validationSplit: 0.05,
  evalEvery: null,
  earlyStoppingPatience: null,
  saveEvery: null,
  resume: null,
  overwrite: false,
  seed: 42,
  gradientCheckpointing: true,
  activationDtype: 'f32',
  quantType: 'nf4',
  doubleQuant: true,
  blocksize: 64,
};

type Check = (v: unknown) => boolean;
const int = (min: number): Check => (v) => typeof v === 'number' && Number.isInteger(v) && v >= min;
const num = (min: number, max = Infinity, exclusiveMin = false): Check => (v) => typeof v === 'number' && Number.isFinite(v) && (exclusiveMin ? v > min : v >= min) && v <= max;
const oneOf = (...values: unknown[]): Check => (v) => values.includes(v);
const str: Check = (v) => typeof v === 'string' && v.length > 0;
const bool: Check = (v) => typeof v === 'boolean';
const nullable = (c: Check): Check => (v) => v === null || c(v);

const RULES: Record<keyof FinetuneConfig, [Check, string]> = {
  model: [str, 'a model directory path'],
  data: [str, 'a dataset file path'],
  output: [str, 'an output directory path'],
  method: [oneOf('lora', 'qlora'), '"lora" or "qlora"'],
  template: [oneOf('auto', 'alpaca', 'chat', 'model'), '"auto", "alpaca", "chat" or "model"'],
  trainOn: [oneOf('response', 'all'), '"response" or "all"'],
  onInvalid: [oneOf('error', 'skip'), '"error" or "skip"'],
  r: [int(1), 'an integer >= 1'],
  alpha: [num(0, Infinity, true), 'a number > 0'],
  dropout: [num(0, 0.999), 'a number in [0, 1)'],
  targets: [(v) => v === 'all-linear' || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x.length > 0)), '"all-linear" or a non-empty list of module names'],
  modulesToSave: [nullable((v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0)), 'a list of module names or null'],
  lr: [num(0, 1, true), 'a number in (0, 1]'],
  schedule: [oneOf('constant', 'linear', 'cosine'), '"constant", "linear" or "cosine"'],
  warmupRatio: [num(0, 0.999), 'a number in [0, 1)'],
  warmupSteps: [int(0), 'an integer >= 0'],
  epochs: [num(0, 10_000, true), 'a number > 0'],
  maxSteps: [nullable(int(1)), 'an integer >= 1 or null'],
  batchSize: [int(1), 'an integer >= 1'],
  gradientAccumulation: [int(1), 'an integer >= 1'],
  maxLength: [int(8), 'an integer >= 8'],
  pack: [bool, 'true or false'],
  maxGradNorm: [num(0), 'a number >= 0 (0 turns clipping off)'],
  optimizer: [oneOf('adamw', 'adamw8bit', 'paged_adamw', 'paged_adamw8bit', 'sgd'), '"adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit" or "sgd"'],
  weightDecay: [num(0), 'a number >= 0'],
  optimizerBudgetMb: [nullable(num(0, Infinity, true)), 'a number of MiB > 0, or null'],
  validationSplit: [num(0, 0.5), 'a fraction in [0, 0.5]'],
  evalEvery: [nullable(int(1)), 'an integer >= 1 or null'],
  earlyStoppingPatience: [nullable(int(1)), 'an integer >= 1 or null'],
  saveEvery: [nullable(int(1)), 'an integer >= 1 or null'],
  resume: [nullable(str), 'a checkpoint directory, "latest", or null'],
  overwrite: [bool, 'true or false'],
  seed: [int(0), 'an integer >= 0'],
  gradientCheckpointing: [bool, 'true or false'],
  activationDtype: [oneOf('f32', 'f16'), '"f32" or "f16"'],
  quantType: [oneOf('nf4', 'fp4'), '"nf4" or "fp4"'],
  doubleQuant: [bool, 'true or false'],
  blocksize: [oneOf(32, 64, 128, 256, 512, 1024, 2048, 4096), 'a power of two from 32 to 4096'],
};

/** Accepted spellings: camelCase as above, or snake_case / kebab-case of the same names. */
function canonical(key: string): string {
  return key.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Merges `raw` (from a file and flags, later wins) over the defaults and validates every key. */
export function resolveFinetuneConfig(raw: Record<string, unknown>, source = 'config'): FinetuneConfig {
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const k = canonical(key);
    if (!(k in RULES)) {
      throw new FormatError({ file: source, field: key, expected: `one of the configuration keys (${Object.keys(RULES).join(', ')})`, got: 'an unknown key' });
    }
    merged[k] = value;
  }
  for (const [key, [check, expected]] of Object.entries(RULES)) {
    const v = merged[key];
    if (v === undefined) throw new FormatError({ file: source, field: key, expected, got: 'nothing (it is required)' });
    if (!check(v)) throw new FormatError({ file: source, field: key, expected, got: typeof v === 'string' ? JSON.stringify(v) : v });
  }
  const c = merged as unknown as FinetuneConfig;
  if (c.earlyStoppingPatience !== null && (c.validationSplit === 0 || c.evalEvery === null)) {
    throw new FormatError({ file: source, field: 'earlyStoppingPatience', expected: 'validationSplit > 0 and evalEvery set', got: `validationSplit ${c.validationSplit}, evalEvery ${String(c.evalEvery)}` });
  }
  return c;
}
