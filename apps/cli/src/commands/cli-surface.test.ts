// The command line's surface as the README shows it: estimate takes train's flag names (the old
// ones as aliases) and scales its units, info answers --json, default output directories are in
// --help and .gitignore, the README's `pnpm peft-ts` commands exist, and the --lora banner reads.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NonFiniteError } from '@peft-ts/trainer';
import { UsageError } from '../args.js';
import { estimate, formatSize } from './estimate.js';
import { info } from './info.js';
import { train } from './train.js';
import { demo } from './demo.js';
import { alpacaJsonl, FIXTURES, LLAMA2_TOKENIZER_DIR, REPO_ROOT, writeTinyLlama } from '../testing/tiny-model.js';
import { captureOutput } from '../testing/capture.js';


async function run(fn: (argv: string[]) => Promise<number>, argv: string[]): Promise<string> {
  const out = captureOutput();
  try {
    expect(await fn(argv)).toBe(0);
    return out.text();
  } finally {
    vi.restoreAllMocks();
  }
}

const COMMANDS = ['demo', 'train', 'generate', 'merge', 'quantize', 'estimate', 'inspect', 'info', 'export', 'eval', 'data', 'sweep'];

describe('peft-ts command-line surface', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('estimate takes train flag names and keeps the old ones as aliases', async () => {
    const trainNames = await run(estimate, ['tinyllama-1.1b', '--batch-size', '4', '--max-length', '256', '--no-gradient-checkpointing', '--json']);
    const oldNames = await run(estimate, ['tinyllama-1.1b', '--batch', '4', '--seq-len', '256', '--no-checkpointing', '--json']);
    const defaults = await run(estimate, ['tinyllama-1.1b', '--json']);
    expect(trainNames).toBe(oldNames);
    expect(trainNames).not.toBe(defaults);
    const help = await run(estimate, ['--help']);
    for (const flag of ['--batch-size', '--max-length', '--no-gradient-checkpointing']) expect(help).toContain(flag);
    await expect(estimate(['7b', '--batch-size', '2', '--batch', '4'])).rejects.toThrow(UsageError);
    await expect(estimate(['7b', '--batch-size', '2', '--batch', '4'])).rejects.toThrow(/--batch-size and --batch \(its older name\) disagree/);
    await expect(estimate(['7b', '--max-length', 'long'])).rejects.toThrow(/--max-length: expected an integer >= 1, got "long"/);
  });

  it('estimate scales its units so that a small model does not read 0.00 GB', async () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(999)).toBe('999 B');
    expect(formatSize(1000)).toBe('1.00 kB');
    expect(formatSize(16_777_216)).toBe('16.78 MB');
    expect(formatSize(13_476_831_232)).toBe('13.48 GB');
    const text = await run(estimate, [join(FIXTURES, 'hf-tiny/llama/model')]);
    expect(text).not.toContain('0.00 ');
    const rows = text.split('\n').filter((l) => /^(full|lora|qlora)\s/.test(l));
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r).toMatch(/\d+\.\d\d (kB|MB)\s*$/);
  });

  it('info answers --json with the adapter description', async () => {
    const json = JSON.parse(await run(info, ['--json'])) as { description: string; features: string[]; limits: { maxStorageBufferBindingSize: number } };
    expect(typeof json.description).toBe('string');
    expect(Array.isArray(json.features)).toBe(true);
    expect(json.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(await run(info, ['--help'])).toContain('--json');
    await expect(info(['extra'])).rejects.toThrow(UsageError);
  });

  it('names the default output directories in --help and ignores them in git', async () => {
    expect(await run(train, ['--help'])).toMatch(/--output <dir>[^\n]*\n\s+\(default \.\/peft-ts-output\)/);
    expect(await run(demo, ['--help'])).toMatch(/--dir <dir>.*\(default \.\/peft-ts-demo\)/);
    const ignored = readFileSync(join(REPO_ROOT, '.gitignore'), 'utf8').split('\n');
    expect(ignored).toContain('peft-ts-output/');
    expect(ignored).toContain('peft-ts-demo/');
  });

  it('makes the README commands work as written: `pnpm peft-ts <command>` runs the built CLI', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['peft-ts']).toBe('node apps/cli/dist/cli.js');
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const used = [...readme.matchAll(/pnpm peft-ts ([a-z]+)/g)].map((m) => m[1]);
    expect(used.length).toBeGreaterThan(3);
    for (const c of used) expect(COMMANDS).toContain(c);
    // A bare `peft-ts <command>` in the README would not run from a clone.
    expect(readme).not.toMatch(/(^|`)peft-ts (demo|info|train|estimate|generate|merge|quantize|inspect)\b/m);
  });

  it('prints the --lora model banner without a stray separator, and writes a labelled loss.svg', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-banner-'));
    const data = join(work, 'data.jsonl');
    await writeFile(data, alpacaJsonl(4, 6));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const output = join(work, 'run');
    const text = await run(train, ['--model', model, '--data', data, '--output', output, '--lora', '--max-steps', '1', '--batch-size', '1', '--validation-split', '0', '--optimizer', 'adamw']);
    expect(text).toMatch(/model: LlamaForCausalLM; trainable params: /);
    expect(text).not.toMatch(/LlamaForCausalLM ;/);
    const svg = readFileSync(join(output, 'loss.svg'), 'utf8');
    expect(svg).toContain('optimizer step');
    expect(svg).toMatch(/class="train-point"/);
  });

  it('leaves loss.svg with the step a non-finite loss stopped the run at marked', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-nan-svg-'));
    const data = join(work, 'data.jsonl');
    await writeFile(data, alpacaJsonl(3, 4));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR, poisonHead: true });
    const output = join(work, 'run');
    captureOutput();
    await expect(train(['--model', model, '--data', data, '--output', output, '--lora', '--max-steps', '2', '--batch-size', '1', '--validation-split', '0', '--optimizer', 'adamw'])).rejects.toThrow(NonFiniteError);
    vi.restoreAllMocks();
    const svg = readFileSync(join(output, 'loss.svg'), 'utf8');
    expect(svg.match(/class="nonfinite-marker" data-step="(\d+)"/g)).toEqual(['class="nonfinite-marker" data-step="1"']);
    expect(svg).toContain('non-finite loss (1)');
  });
});
