// `peft-ts train` and examples that truncation leaves with nothing to learn: dropped with a
// counted warning (no zero-loss optimizer steps), and an error when none is left.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { train } from './train.js';
import { LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureStderr } from '../testing/capture.js';

const QUICK = ['--lora', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '48'];
const LONG = `Describe ${'the quiet river under the northern stone bridge and '.repeat(4)}the light.`;

describe('peft-ts train: examples with no trained token', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('drops them with a count and never takes a zero-loss step; stops when none is left', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-empty-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const records = [
      { instruction: LONG, input: '', output: 'Calm.' },
      { instruction: 'Say hi.', input: '', output: 'Hi there.' },
      { instruction: LONG, input: '', output: 'Slow.' },
      { instruction: 'Say bye.', input: '', output: 'Bye now.' },
    ];
    const data = join(work, 'd.jsonl');
    await writeFile(data, records.map((r) => JSON.stringify(r)).join('\n'));
    const err = captureStderr();
    const out = join(work, 'out');
    expect(await train(['--model', model, '--data', data, '--output', out, '--epochs', '2', ...QUICK])).toBe(0);
    vi.restoreAllMocks();
    expect(err.text()).toMatch(new RegExp(`data: warning: dropped 2 of 4 examples with no trained token left after truncation to maxLength 48 \\(only response tokens are trained\\) \\(first: ${data}:1\\)`));
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; loss: number; gradNorm: number })
      .filter((l) => l.type === 'train');
    // Two usable examples, two epochs, batch 1: four steps, each with a real loss and gradient.
    expect(steps).toHaveLength(4);
    for (const s of steps) {
      expect(s.loss).toBeGreaterThan(1);
      expect(s.gradNorm).toBeGreaterThan(0);
    }

    const none = join(work, 'none.jsonl');
    await writeFile(none, [records[0], records[2]].map((r) => JSON.stringify(r)).join('\n'));
    captureStderr();
    const run = train(['--model', model, '--data', none, '--output', join(work, 'out2'), '--max-steps', '1', ...QUICK]);
    await expect(run).rejects.toThrow(FormatError);
    await expect(run).rejects.toThrow(/none\.jsonl: records: expected at least one example with a trained token within maxLength 48 .*got all 2 examples have no trained token left/);
  });
});
