// Paths checked before any GPU work, each refused with one line naming the path and what was
// expected (exit 3); a non-empty --output refused unless --overwrite or --resume; stale
// temporaries of killed runs cleaned on start and resume.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PathError, withPath } from '@peft-ts/trainer/node';
import { EXIT, errorLine, exitCodeFor } from '../errors.js';
import { demo } from './demo.js';
import { generateCommand } from './generate.js';
import { merge } from './merge.js';
import { train } from './train.js';
import { alpacaJsonl, FIXTURES, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';

const QUICK = ['--lora', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64'];

function quiet(): void {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

/** A process id that no running process has. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid -= 1) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

describe('peft-ts paths', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('names the missing or wrong path, before any GPU work, with exit code 3', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-paths-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(2, 3));
    const out = join(work, 'out');
    const cases: [string[], RegExp][] = [
      [['--model', '/nope', '--data', data, '--output', out], /^--model: \/nope: expected a model directory \(with config\.json, tokenizer\.json\), got nothing at that path$/],
      [['--model', model, '--data', '/nope.jsonl', '--output', out], /^--data: \/nope\.jsonl: expected a dataset file \(JSON or JSONL\), got nothing at that path$/],
      [['--model', model, '--data', work, '--output', out], new RegExp(`^--data: ${work}: expected a dataset file \\(JSON or JSONL\\), got a directory$`)],
      [['--model', model, '--data', data, '--output', out, '--resume', '/nope'], /^--resume: \/nope: expected a checkpoint directory .*got nothing at that path$/],
      [['--model', model, '--data', data, '--output', out, '--resume', 'latest'], /^--resume: .*out: expected a checkpoint-<step> directory to resume from \(latest\), got no checkpoint/],
      [['--model', model, '--data', data, '--output', data], /^--output: .*d\.jsonl: expected an output directory \(or a path where one can be created\), got a file$/],
      [['--model', model, '--data', data, '--output', join(data, 'sub')], /^--output: .*d\.jsonl\/sub: expected an output directory path, got a path through the file/],
    ];
    for (const [args, message] of cases) {
      const e = await rejection(train([...args, ...QUICK]));
      expect(e, args.join(' ')).toBeInstanceOf(PathError);
      expect(errorLine(e)).toMatch(new RegExp(`^peft-ts: ${message.source.slice(1)}`));
      expect(exitCodeFor(e)).toBe(EXIT.input);
    }
    // A failed resume leaves no empty output directory behind.
    expect(existsSync(out)).toBe(false);

    // generate: a model directory without tokenizer.json.
    const e = await rejection(generateCommand([join(FIXTURES, 'hf-tiny/llama/model'), '--prompt', 'hi']));
    expect(e.message).toMatch(/^<model-dir>: .*hf-tiny\/llama\/model\/tokenizer\.json: expected the tokenizer\.json of a model directory, got nothing at that path$/);
    // merge: an adapter directory that is not one.
    const m = await rejection(merge([model, work, join(work, 'merged')]));
    expect(m.message).toMatch(/^<adapter-dir>: .*adapter_config\.json: expected the adapter_config\.json of a PEFT adapter directory, got nothing at that path$/);
  });

  it('maps I/O errors to one line that names the path', async () => {
    // /dev/full fails every write with ENOSPC, and node names no file for a failed write.
    const e = await rejection(withPath('/dev/full', 'a file written in full', () => writeFile('/dev/full', 'x')));
    expect(e).toBeInstanceOf(PathError);
    expect(errorLine(e)).toBe('peft-ts: /dev/full: expected a file written in full, got no space left on the device (ENOSPC)');
    expect(exitCodeFor(e)).toBe(EXIT.input);
    const raw = Object.assign(new Error('EROFS: read-only file system, mkdir'), { code: 'EROFS', syscall: 'mkdir', path: '/ro/out' });
    expect(errorLine(raw)).toBe('peft-ts: /ro/out: a read-only file system (EROFS) during mkdir');
    expect(exitCodeFor(raw)).toBe(EXIT.input);
  });

  it('refuses to train into an earlier run unless --overwrite or --resume, and cleans stale temporaries', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-out-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(3, 3));
    const out = join(work, 'out');
    quiet();
    expect(await train(['--model', model, '--data', data, '--output', out, '--max-steps', '1', '--save-every', '1', ...QUICK])).toBe(0);
    await writeFile(join(out, 'notes.txt'), 'mine');
    const e = await rejection(train(['--model', model, '--data', data, '--output', out, '--max-steps', '1', ...QUICK]));
    expect(e.message).toMatch(/^--output: .*out: expected an empty or new directory, got one with files of an earlier run; pass --overwrite to replace that run or --resume latest to continue it$/);
    expect(exitCodeFor(e)).toBe(EXIT.input);

    // Temporaries a killed run left: removed on resume; one of a live process stays.
    const dead = deadPid();
    await mkdir(join(out, `.checkpoint-2.tmp-${dead}-0a1b2c`));
    await writeFile(join(out, `metrics.jsonl.${dead}.tmp`), '');
    await mkdir(join(out, `.checkpoint-9.tmp-${process.ppid}-0a1b2c`));
    // A user's file that merely looks like a temporary stays.
    await writeFile(join(out, `notes.${dead}.tmp`), 'mine');
    expect(await train(['--model', model, '--data', data, '--output', out, '--max-steps', '2', '--save-every', '1', '--resume', 'latest', ...QUICK])).toBe(0);
    const names = readdirSync(out);
    expect(names).not.toContain(`.checkpoint-2.tmp-${dead}-0a1b2c`);
    expect(names).not.toContain(`metrics.jsonl.${dead}.tmp`);
    expect(names).toContain(`.checkpoint-9.tmp-${process.ppid}-0a1b2c`);
    expect(names).toContain(`notes.${dead}.tmp`);

    // --overwrite replaces the run's files and nothing else.
    await mkdir(join(out, `.adapter.tmp-${dead}-ffee00`));
    expect(await train(['--model', model, '--data', data, '--output', out, '--max-steps', '1', '--overwrite', ...QUICK])).toBe(0);
    const after = readdirSync(out).sort();
    expect(after).toEqual(['.checkpoint-9.tmp-' + String(process.ppid) + '-0a1b2c', 'adapter', 'loss.svg', 'metrics.jsonl', `notes.${dead}.tmp`, 'notes.txt', 'summary.json'].sort());
  });

  it('demo refuses a directory with an earlier demo run unless --fresh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peft-cli-demo-'));
    await mkdir(join(dir, 'run'), { recursive: true });
    await writeFile(join(dir, 'run', 'metrics.jsonl'), '');
    quiet();
    await expect(demo(['--dir', dir])).rejects.toThrow(/^peft-ts demo: .*run: expected no earlier demo run, got one; pass --fresh to replace it/);
  });
});
