// `peft-ts train --on-invalid`: every invalid record is reported (file:line and field, the
// first ten listed and the rest counted); 'error' fails before any GPU work, 'skip' trains on
// the valid ones.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train } from './train.js';
import { LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureStderr } from '../testing/capture.js';

const QUICK = ['--lora', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64', '--max-steps', '1'];

describe('peft-ts train --on-invalid', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('lists every invalid record, capped with a count; error fails, skip trains without them', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-invalid-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const lines: string[] = [];
    for (let i = 0; i < 15; i += 1) lines.push(JSON.stringify({ instruction: `Say ${i}.`, input: '', output: `${i}` }));
    // Twelve bad records: lines 2, 4, ..., 24 (a number as output, or no output).
    const bad: number[] = [];
    for (let k = 0; k < 12; k += 1) {
      lines.splice(2 * k + 1, 0, k % 2 === 0 ? JSON.stringify({ instruction: 'Bad.', input: '', output: 5 }) : JSON.stringify({ instruction: 'Bad.', input: '' }));
      bad.push(2 * k + 2);
    }
    const data = join(work, 'd.jsonl');
    await writeFile(data, `${lines.join('\n')}\n`);

    captureStderr();
    const failed = await train(['--model', model, '--data', data, '--output', join(work, 'a'), ...QUICK]).then(
      () => 'accepted',
      (e: unknown) => (e as Error).message,
    );
    vi.restoreAllMocks();
    const [head, ...listed] = failed.split('\n');
    expect(head).toBe(`${data}: 12 invalid records (fix them, or pass --on-invalid skip to train without them):`);
    expect(listed).toHaveLength(11);
    bad.slice(0, 10).forEach((line, k) => expect(listed[k]).toMatch(new RegExp(`^  ${data}:${line}: output`)));
    expect(listed[10]).toBe('  ... and 2 more');

    const err = captureStderr();
    expect(await train(['--model', model, '--data', data, '--output', join(work, 'b'), '--on-invalid', 'skip', ...QUICK])).toBe(0);
    expect(err.text()).toContain('data: warning: skipped 12 invalid records of 27:');
    expect(err.text()).toMatch(/data: 15 examples from/);
    vi.restoreAllMocks();

    await expect(train(['--model', model, '--data', data, '--on-invalid', 'maybe'])).rejects.toThrow(/^peft-ts train: --on-invalid: expected "error" or "skip", got "maybe"$/);
  });

  it('refuses a file that is not UTF-8, naming the line, and quotes an empty string', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-encoding-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const record = (output: string) => `${JSON.stringify({ instruction: 'Name a drink.', input: '', output })}\n`;
    const latin1 = join(work, 'latin1.jsonl');
    await writeFile(latin1, Buffer.from(record('tea') + record('caf\u00e9 au lait'), 'latin1'));
    const utf16 = join(work, 'utf16.jsonl');
    await writeFile(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(record('tea'), 'utf16le')]));
    const empty = join(work, 'empty.jsonl');
    await writeFile(empty, record('tea') + JSON.stringify({ instruction: '', input: '', output: 'x' }));
    captureStderr();
    const message = (data: string) =>
      train(['--model', model, '--data', data, '--output', join(work, 'out'), ...QUICK]).then(
        () => 'accepted',
        (e: unknown) => (e as Error).message,
      );
    expect(await message(latin1)).toMatch(new RegExp(`^${latin1}:2: encoding: expected UTF-8 text, got the byte 0xE9 followed by 0x20`));
    expect(await message(utf16)).toBe(`${utf16}: encoding: expected UTF-8 text, got a UTF-16 LE byte order mark; convert the file to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)`);
    expect(await message(empty)).toContain(`${empty}:2: instruction: expected a non-empty string, got ""`);
  });
});
