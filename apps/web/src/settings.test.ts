// The page's settings become the configuration `peft-ts train` resolves, key for key, with the
// CLI's defaults for everything the page does not offer.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '@peft-ts/trainer';
import { DEFAULT_SETTINGS } from './protocol.js';
import { finetuneConfig, maskedRuns, TRAINED_CLOSE, TRAINED_OPEN } from './settings.js';

describe('finetuneConfig', () => {
  it("maps every setting onto the trainer's key of the same name and keeps the CLI's defaults for the rest", () => {
    const config = finetuneConfig(DEFAULT_SETTINGS, 'demo-model', 'example-alpaca.json', 'peft-ts/run');
    for (const [key, value] of Object.entries(DEFAULT_SETTINGS)) {
      expect(config[key as keyof typeof config], key).toEqual(value);
    }
    expect({ model: config.model, data: config.data, output: config.output }).toEqual({ model: 'demo-model', data: 'example-alpaca.json', output: 'peft-ts/run' });
    const offered = new Set([...Object.keys(DEFAULT_SETTINGS), 'model', 'data', 'output']);
    for (const [key, value] of Object.entries(DEFAULT_CONFIG)) {
      if (!offered.has(key)) expect(config[key as keyof typeof config], key).toEqual(value);
    }
  });

  it('reads a comma-separated target list', () => {
    const config = finetuneConfig({ ...DEFAULT_SETTINGS, targets: ' q_proj, v_proj ,' }, 'm', 'd', 'o');
    expect(config.targets).toEqual(['q_proj', 'v_proj']);
  });

  it('refuses a bad value naming the setting', () => {
    expect(() => finetuneConfig({ ...DEFAULT_SETTINGS, r: 0 }, 'm', 'd', 'o')).toThrow(/settings.*\br\b.*integer >= 1/);
    expect(() => finetuneConfig({ ...DEFAULT_SETTINGS, validationSplit: 0.9 }, 'm', 'd', 'o')).toThrow(/validationSplit/);
  });
});

describe('maskedRuns', () => {
  it('splits marked text into prompt and trained runs, dropping empty ones', () => {
    const text = `### Response:\n${TRAINED_OPEN}negative<|endoftext|>${TRAINED_CLOSE}`;
    expect(maskedRuns(text)).toEqual([
      ['### Response:\n', false],
      ['negative<|endoftext|>', true],
    ]);
    expect(maskedRuns(`a${TRAINED_OPEN}b${TRAINED_CLOSE}c${TRAINED_OPEN}d${TRAINED_CLOSE}`)).toEqual([
      ['a', false],
      ['b', true],
      ['c', false],
      ['d', true],
    ]);
    expect(maskedRuns('')).toEqual([]);
  });
});
