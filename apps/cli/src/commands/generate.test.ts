// `peft-ts generate` tokenizes the prompt exactly as training tokenizes an example's prompt
// part (one BOS, no EOS), so its greedy output is the library's for the same prompt.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IGNORE_INDEX, tokenizeExample, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { generate, loadModel } from '@peft-ts/models/node';
import { createRuntime } from '@peft-ts/tensor';
import { generateCommand } from './generate.js';
import { LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureOutput } from '../testing/capture.js';


describe('peft-ts generate', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('puts one BOS before the prompt and matches the library greedy ids', async () => {
    const dir = await writeTinyLlama({ vocabSize: 32000, maxPositions: 128, tokenizerDir: LLAMA2_TOKENIZER_DIR, seed: 3 });
    const instruction = 'Name a colour.';
    const out = captureOutput();
    expect(await generateCommand([dir, '--prompt', instruction, '--max-new-tokens', '5', '--json'])).toBe(0);
    vi.restoreAllMocks();
    const cli = JSON.parse(out.stdout()) as { prompt_ids: number[]; output_ids: number[] };

    // The prompt part of a training example with the same instruction.
    const tokenizer = await tokenizerFromDir(dir);
    const example = tokenizeExample({ kind: 'instruction', instruction, input: '', output: 'Blue.' }, tokenizer, { template: 'alpaca' });
    const firstTrained = example.labels.findIndex((l) => l !== IGNORE_INDEX);
    const trainingPrompt = [...example.inputIds.slice(0, firstTrained)];
    expect(cli.prompt_ids).toEqual(trainingPrompt);
    expect(cli.prompt_ids[0]).toBe(1);
    expect(cli.prompt_ids.filter((id) => id === 1)).toHaveLength(1);
    expect(cli.prompt_ids).not.toContain(2);

    const rt = await createRuntime({ seed: 0 });
    try {
      const model = await loadModel(rt, dir);
      const lib = await generate(model, [trainingPrompt], { maxNewTokens: 5, eosTokenIds: [2] });
      model.dispose();
      expect(cli.output_ids).toEqual(lib.tokens[0]);
      expect(cli.output_ids.length).toBeGreaterThan(0);
    } finally {
      rt.destroy();
    }
  });
});
