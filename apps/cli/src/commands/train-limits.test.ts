// `peft-ts train` and `generate` against the model's limits: rows past max_position_embeddings
// train as a model with a longer limit would (with a warning), a tokenizer larger than the
// embedding is refused before any GPU work, and a NaN loss stops the run with no adapter.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { NonFiniteError } from '@peft-ts/trainer';
import { generateCommand } from './generate.js';
import { train } from './train.js';
import { alpacaJsonl, FIXTURES, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureStderr } from '../testing/capture.js';

const QUICK = ['--lora', '--max-steps', '2', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--lr', '0.01'];

function trainLosses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; loss: number })
    .filter((l) => l.type === 'train')
    .map((l) => l.loss);
}

describe('peft-ts train: model limits', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('trains rows past max_position_embeddings as a longer limit would, and says so', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-pos-'));
    const data = join(work, 'long.jsonl');
    await writeFile(data, alpacaJsonl(4, 30));
    const short = await writeTinyLlama({ vocabSize: 32000, maxPositions: 16, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const long = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const err = captureStderr();
    expect(await train(['--model', short, '--data', data, '--output', join(work, 'a'), '--max-length', '48', ...QUICK])).toBe(0);
    expect(await train(['--model', long, '--data', data, '--output', join(work, 'b'), '--max-length', '48', ...QUICK])).toBe(0);
    vi.restoreAllMocks();
    expect(err.text()).toMatch(/rows of up to 48 tokens are longer than max_position_embeddings 16 of LlamaForCausalLM/);
    const a = trainLosses(join(work, 'a'));
    expect(a).toHaveLength(2);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(a).toEqual(trainLosses(join(work, 'b')));
  });

  it('refuses a tokenizer with more ids than the embedding, in train and generate', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-vocab-'));
    const model = join(work, 'model');
    await cp(join(FIXTURES, 'hf-tiny/llama/model'), model, { recursive: true });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(LLAMA2_TOKENIZER_DIR, f), join(model, f));
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(2, 3));
    const message = /tokenizer\.json: vocabulary: expected at most vocab_size 320 ids .*got 32000 ids/;
    captureStderr();
    await expect(train(['--model', model, '--data', data, '--output', join(work, 'out'), ...QUICK])).rejects.toThrow(FormatError);
    await expect(train(['--model', model, '--data', data, '--output', join(work, 'out'), ...QUICK])).rejects.toThrow(message);
    await expect(generateCommand([model, '--prompt', 'hi'])).rejects.toThrow(message);
  });

  it('stops on a NaN loss with an error naming the step and writes no adapter', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-nan-'));
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(3, 4));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR, poisonHead: true });
    const out = join(work, 'out');
    captureStderr();
    const run = train(['--model', model, '--data', data, '--output', out, ...QUICK]);
    await expect(run).rejects.toThrow(NonFiniteError);
    await expect(run).rejects.toThrow(/^training stopped at step 1: the loss is NaN/);
    expect(existsSync(join(out, 'adapter'))).toBe(false);
  });
});
