// The commands as a user runs them: their output, and errors that name the flag or key before
// any GPU work.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { UsageError } from '../args.js';
import { estimate } from './estimate.js';
import { inspect } from './inspect.js';
import { train } from './train.js';
import { captureOutput } from '../testing/capture.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));


describe('peft-ts commands', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('estimate prints the full / LoRA / QLoRA table for a named size', async () => {
    const out = captureOutput();
    expect(await estimate(['7b', '--r', '8', '--targets', 'q_proj,v_proj'])).toBe(0);
    const text = out.stdout();
    expect(text).toContain('7b: LlamaForCausalLM, 6,738,415,616 parameters (32 layers, hidden 4096)');
    expect(text).toMatch(/^full\s+6,738,415,616\s+13\.48 GB\s+13\.48 GB\s+80\.86 GB/m);
    // The LoRA weights (A and B in f32) count with the frozen ones.
    expect(text).toMatch(/^lora\s+4,194,304\s+13\.49 GB\s+16\.78 MB\s+33\.55 MB/m);
    expect(text).toMatch(/^qlora\s+4,194,304\s+3\.\d\d GB/m);
  });

  it('estimate reads a model directory and answers --json', async () => {
    const out = captureOutput();
    await estimate([join(fixtures, 'hf-tiny/qwen2/model'), '--method', 'qlora', '--json']);
    const json = JSON.parse(out.stdout()) as { estimates: { method: string; params: { total: number } }[] };
    expect(json.estimates.map((e) => e.method)).toEqual(['qlora']);
    expect(json.estimates[0]?.params.total).toBeGreaterThan(0);
  });

  it('inspect summarises an adapter and a 4-bit model', async () => {
    let out = captureOutput();
    await inspect([join(fixtures, 'hf-tiny/llama/adapter')]);
    expect(out.stdout()).toContain('r / alpha:       4 / 8 (scale 2.0000)');
    expect(out.stdout()).toContain('parameters:      8,960 in 28 tensors');
    vi.restoreAllMocks();
    out = captureOutput();
    await inspect([join(fixtures, 'bnb/llama-bnb-nf4')]);
    expect(out.stdout()).toContain('quantization:    bitsandbytes nf4 + double quant');
  });

  it('train validates the config file and flags before touching the GPU', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peft-cli-'));
    const yaml = join(dir, 'train.yaml');
    await writeFile(yaml, 'model: some/model\ndata: data.jsonl\nbatch_size: 0\n');
    await expect(train(['--config', yaml])).rejects.toThrow(FormatError);
    await expect(train(['--config', yaml])).rejects.toThrow(/train.yaml: batchSize: expected an integer >= 1, got 0/);
    await writeFile(yaml, 'model: [unclosed\n');
    await expect(train(['--config', yaml])).rejects.toThrow(/train.yaml: \(syntax\): expected valid YAML/);
    await expect(train(['--model', 'm', '--data', 'd', '--lr', 'fast'])).rejects.toThrow(UsageError);
    await expect(train(['--model', 'm', '--data', 'd', '--qlora', '--lora'])).rejects.toThrow(/exclude each other/);
    await expect(train(['--model', 'm', '--data', 'd', '--optimizer', 'lion'])).rejects.toThrow(/optimizer: expected "adamw"/);
  });

  it('estimate refuses an unknown size, naming the known ones', async () => {
    await expect(estimate(['3b'])).rejects.toThrow(UnsupportedError);
    await expect(estimate(['3b'])).rejects.toThrow(/supported: gpt2, qwen2.5-0.5b, tinyllama-1.1b/);
  });
});
