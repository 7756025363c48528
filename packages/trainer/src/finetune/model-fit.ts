// Checks that the tokenizer and the training rows fit the model, made from config.json and the
// tokenized data before any weight reaches the GPU.
import { FormatError } from '@peft-ts/errors';
import type { Tokenizer } from '@peft-ts/data-alpaca';
import type { ModelConfig } from '@peft-ts/models';

/** A file of the model directory (a path in Node, a tree name elsewhere), for messages. */
const join = (dir: string, file: string): string => `${dir.replace(/\/+$/, '')}/${file}`;

/** Refuses a tokenizer that produces ids the model's embedding has no row for. */
export function checkTokenizerFits(tokenizer: Tokenizer, config: ModelConfig, modelDir: string): void {
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new FormatError({
      file: join(modelDir, 'tokenizer.json'),
      field: 'vocabulary',
      expected: `at most vocab_size ${config.vocabSize} ids (the embedding rows in ${join(modelDir, 'config.json')}); this tokenizer belongs to another model`,
      got: `${tokenizer.vocabSize} ids`,
    });
  }
}

/**
 * Rows longer than the model's positions: learned positions (GPT-2) have no embedding for them
 * and are refused; rotary models compute the angles, and the caller is told with a warning.
 */
export function checkPositionsFit(config: ModelConfig, modelDir: string, longest: number, maxLength: number): string | null {
  if (longest <= config.maxPositions) return null;
  if (!config.rope) {
    throw new FormatError({
      file: join(modelDir, 'config.json'),
      field: 'n_positions',
      expected: `at least ${longest} positions for the longest training row (maxLength ${maxLength}); ${config.className} has learned positions, so lower maxLength to ${config.maxPositions}`,
      got: config.maxPositions,
    });
  }
  return `rows of up to ${longest} tokens are longer than max_position_embeddings ${config.maxPositions} of ${config.className}: rotary angles are computed for every position, but the model was not pretrained on positions this far (lower maxLength to ${config.maxPositions} to stay within it)`;
}
