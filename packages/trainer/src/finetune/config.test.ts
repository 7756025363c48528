// The fine-tuning config: defaults, key spellings, and errors that name the key.
import { describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { DEFAULT_CONFIG, resolveFinetuneConfig } from './config.js';

describe('resolveFinetuneConfig', () => {
  it('fills defaults and accepts snake_case and kebab-case keys', () => {
    const c = resolveFinetuneConfig({ model: 'm', data: 'd.json', learning_rate: undefined, 'batch-size': 8, lora_alpha: undefined, max_steps: 100 });
    expect(c.batchSize).toBe(8);
    expect(c.maxSteps).toBe(100);
    expect(c.r).toBe(DEFAULT_CONFIG.r);
    expect(c.method).toBe('qlora');
  });

  it('names the key, what it expected and what it got', () => {
    expect(() => resolveFinetuneConfig({ model: 'm', data: 'd', lr: -1 }, 'train.yaml')).toThrow(FormatError);
    expect(() => resolveFinetuneConfig({ model: 'm', data: 'd', lr: -1 }, 'train.yaml')).toThrow(/train.yaml: lr: expected a number in \(0, 1\], got -1/);
    expect(() => resolveFinetuneConfig({ model: 'm', data: 'd', method: 'dora' })).toThrow(/method: expected "lora" or "qlora", got "dora"/);
    expect(() => resolveFinetuneConfig({ model: 'm', data: 'd', batchsize: 3 })).toThrow(/batchsize: expected one of the configuration keys/);
    expect(() => resolveFinetuneConfig({ data: 'd' })).toThrow(/model: expected a model directory path, got nothing/);
    expect(() => resolveFinetuneConfig({ model: 'm', data: 'd', targets: [] })).toThrow(/targets/);
    expect(() => resolveFinetuneConfig({ model: 'm', data: 'd', earlyStoppingPatience: 2 })).toThrow(/earlyStoppingPatience: expected validationSplit > 0 and evalEvery set/);
  });
});
