// Training rows against the model's positions, decided from config.json before any weights load.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError } from '@peft-ts/errors';
import { loadModelConfig } from '@peft-ts/models/node';
import { checkPositionsFit } from '../index.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

describe('checkPositionsFit', () => {
  it('refuses rows past n_positions for learned positions (GPT-2), naming the limit', async () => {
    const dir = join(fixtures, 'gpt2', 'model');
    const config = await loadModelConfig(dir);
    expect(checkPositionsFit(config, dir, config.maxPositions, 512)).toBeNull();
    expect(() => checkPositionsFit(config, dir, config.maxPositions + 32, 512)).toThrow(FormatError);
    expect(() => checkPositionsFit(config, dir, config.maxPositions + 32, 512)).toThrow(
      `${join(dir, 'config.json')}: n_positions: expected at least ${config.maxPositions + 32} positions for the longest training row (maxLength 512); GPT2LMHeadModel has learned positions, so lower maxLength to ${config.maxPositions}, got ${config.maxPositions}`,
    );
  });

  it('warns, and does not refuse, for rotary models', async () => {
    for (const arch of ['llama', 'mistral', 'qwen2', 'phi3']) {
      const dir = join(fixtures, arch, 'model');
      const config = await loadModelConfig(dir);
      expect(checkPositionsFit(config, dir, 160, 160)).toMatch(new RegExp(`^rows of up to 160 tokens are longer than max_position_embeddings ${config.maxPositions} of ${config.className}`));
    }
  });
});
