// One rule for exit codes: a missing or malformed flag or argument is a usage error (2); a path
// that does not exist or a file that is not what was expected is bad input (3). Every --help
// lists the codes.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, EXIT_CODES_HELP, errorLine, exitCodeFor, withExitCodes } from './errors.js';
import { generateCommand, GENERATE_HELP } from './commands/generate.js';
import { merge, MERGE_HELP } from './commands/merge.js';
import { quantize, QUANTIZE_HELP } from './commands/quantize.js';
import { train, TRAIN_HELP } from './commands/train.js';
import { alpacaJsonl } from './testing/tiny-model.js';

async function exitOf(p: Promise<unknown>): Promise<{ code: number; line: string }> {
  return p.then(
    () => ({ code: EXIT.ok, line: '' }),
    (e: unknown) => ({ code: exitCodeFor(e), line: errorLine(e) }),
  );
}

describe('peft-ts exit codes', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('exits 2 for a missing required flag or argument, in every command', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-exit-'));
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(2, 3));
    const cases: [Promise<unknown>, RegExp][] = [
      [train(['--data', data]), /^peft-ts train: --model is required: expected a model directory path$/],
      [train(['--model', work]), /^peft-ts train: --data is required: expected a dataset file path$/],
      [generateCommand([work]), /^peft-ts generate: --prompt is required/],
      [merge([work, work]), /^peft-ts merge: missing <out-dir>/],
      [quantize([work]), /^peft-ts quantize: missing <out-dir>/],
    ];
    for (const [p, line] of cases) {
      const r = await exitOf(p);
      expect(r.line).toMatch(line);
      expect(r.code, r.line).toBe(EXIT.usage);
    }
    // A config file without the key: the flag or the file's key would do.
    const yaml = join(work, 'c.yaml');
    await writeFile(yaml, `data: ${data}\n`);
    const r = await exitOf(train(['--config', yaml]));
    expect(r.line).toBe(`peft-ts train: --model is required (or model in ${yaml}): expected a model directory path`);
    expect(r.code).toBe(EXIT.usage);
  });

  it('exits 2 for a bad flag value, naming the flag, and 3 for the same value read from a file', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-exit-'));
    let r = await exitOf(train(['--model', work, '--data', 'd.jsonl', '--batch-size', '0']));
    expect(r.line).toBe('peft-ts train: --batch-size: expected an integer >= 1, got 0');
    expect(r.code).toBe(EXIT.usage);
    r = await exitOf(train(['--model', work, '--data', 'd.jsonl', '--lr', '-1e-4']));
    expect(r.line).toBe('peft-ts train: --lr: expected a number in (0, 1], got -0.0001');
    expect(r.code).toBe(EXIT.usage);
    const yaml = join(work, 'c.yaml');
    await writeFile(yaml, 'model: m\ndata: d.jsonl\nbatch_size: 0\n');
    r = await exitOf(train(['--config', yaml]));
    expect(r.line).toMatch(/c\.yaml: batchSize: expected an integer >= 1, got 0$/);
    expect(r.code).toBe(EXIT.input);
  });

  it('exits 3 for a path that does not exist', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-exit-'));
    for (const p of [generateCommand(['/nope', '--prompt', 'hi']), merge(['/nope', work, join(work, 'o')]), quantize(['/nope', join(work, 'o')])]) {
      const r = await exitOf(p);
      expect(r.line).toMatch(/\/nope: expected a model directory/);
      expect(r.code).toBe(EXIT.input);
    }
  });

  it('lists the exit codes in every command help', async () => {
    let text = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      text += String(chunk);
      return true;
    });
    for (const run of [train, generateCommand, merge, quantize]) {
      text = '';
      expect(await run(['--help'])).toBe(EXIT.ok);
      expect(text).toContain(EXIT_CODES_HELP);
      expect(text.split('Exit codes:')).toHaveLength(2);
    }
    // The command line adds the section to a help that lacks it, and never twice.
    for (const help of [TRAIN_HELP, GENERATE_HELP, MERGE_HELP, QUANTIZE_HELP, 'Usage: peft-ts other\n']) {
      expect(withExitCodes(help).split('Exit codes:')).toHaveLength(2);
    }
    expect(EXIT_CODES_HELP).toMatch(/^ {2}2 {2}usage error/m);
    expect(EXIT_CODES_HELP).toMatch(/^ {2}3 {2}bad input/m);
  });
});
