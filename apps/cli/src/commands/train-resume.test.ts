// `peft-ts train --resume` checks what it resumes: a checkpoint of a different run (adapter
// shape, data, model...) is refused with every difference listed; a good one is named.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train } from './train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureStderr } from '../testing/capture.js';

const QUICK = ['--lora', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64'];

describe('peft-ts train --resume', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('refuses a checkpoint of another run, listing the differences, and names the one it resumes', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-resume-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const other = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR, hidden: 8 });
    const data = join(work, 'd.jsonl');
    const data2 = join(work, 'd2.jsonl');
    await writeFile(data, alpacaJsonl(6, 3));
    await writeFile(data2, alpacaJsonl(60, 3));
    const out = join(work, 'out');
    const base = ['--data', data, '--output', out, '--r', '16', ...QUICK];
    captureStderr();
    expect(await train(['--model', model, ...base, '--max-steps', '1', '--save-every', '1'])).toBe(0);

    const refused = async (args: string[]): Promise<string> =>
      train(args).then(
        () => 'accepted',
        (e: unknown) => (e as Error).message,
      );
    const r8 = await refused(['--model', model, ...base, '--r', '8', '--max-steps', '2', '--resume', 'latest']);
    expect(r8).toMatch(/^resume: .*checkpoint-1 belongs to a different run; it differs in r: 16 in the checkpoint, 8 now \(/);
    const moved = await refused(['--model', other, '--data', data2, '--output', out, '--r', '16', ...QUICK, '--seed', '7', '--max-steps', '2', '--resume', 'latest']);
    expect(moved).toMatch(/differs in model \(config\.json and weight files\): [0-9a-f]{12}… in the checkpoint, [0-9a-f]{12}… now; data \(file contents\): [0-9a-f]{12}… in the checkpoint, [0-9a-f]{12}… now; seed: 42 in the checkpoint, 7 now/);

    const err = captureStderr();
    expect(await train(['--model', model, ...base, '--max-steps', '2', '--resume', 'latest'])).toBe(0);
    expect(err.text()).toMatch(new RegExp(`resume: continuing from ${join(out, 'checkpoint-1')} \\(step 1 of 2\\)`));
  });
});
