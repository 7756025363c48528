// `peft-ts eval` on the demo model: the base and adapter losses on the split `train` holds out
// equal the trainer's own validation losses before and after training.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleDatasetPath } from '@peft-ts/data-alpaca/node';
import { createDemoAssets } from '../demo/assets.js';
import { train } from './train.js';
import { evalCommand } from './eval.js';
import { captureOutput } from '../testing/capture.js';

interface EvalJson {
  examples: number;
  tokens: number;
  base: { loss: number; perplexity: number };
  adapter?: { loss: number; perplexity: number };
}


describe('peft-ts eval', () => {
  let work: string;
  let model: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'peft-cli-eval-'));
    model = (await createDemoAssets(join(work, 'model'))).dir;
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await rm(work, { recursive: true, force: true });
  });

  it("equals the trainer's validation loss on the same split, for the base and the adapter", async () => {
    const output = join(work, 'run');
    const data = exampleDatasetPath();
    captureOutput();
    const common = ['--model', model, '--data', data, '--max-length', '96'];
    expect(await train([...common, '--output', output, '--lora', '--r', '4', '--lr', '0.01', '--max-steps', '3', '--eval-every', '3', '--batch-size', '2', '--grad-accum', '1', '--optimizer', 'adamw', '--validation-split', '0.05', '--seed', '7'])).toBe(0);
    vi.restoreAllMocks();
    const evals = readFileSync(join(output, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; step: number; valLoss: number })
      .filter((l) => l.type === 'eval');
    const before = evals.find((e) => e.step === 0)?.valLoss ?? Number.NaN;
    const after = evals.find((e) => e.step === 3)?.valLoss ?? Number.NaN;
    expect(before).toBeGreaterThan(1);
    // Three steps at a high rate move the loss well beyond round-off.
    expect(Math.abs(before - after)).toBeGreaterThan(1e-3);

    const cap = captureOutput();
    // A different batch size than training: the mean over tokens does not depend on it.
    expect(await evalCommand([...common, '--adapter', join(output, 'adapter'), '--validation-split', '0.05', '--seed', '7', '--batch-size', '3', '--json'])).toBe(0);
    vi.restoreAllMocks();
    const result = JSON.parse(cap.stdout()) as EvalJson;
    // 255 records, 5% held out.
    expect(result.examples).toBe(13);
    expect(result.base.loss).toBeCloseTo(before, 4);
    expect(result.adapter?.loss).toBeCloseTo(after, 4);
    expect(result.base.perplexity).toBeCloseTo(Math.exp(before), 2);
  });

  it('scores every token with --tokens all: more tokens, and a table by default', async () => {
    const cap = captureOutput();
    const data = exampleDatasetPath();
    expect(await evalCommand(['--model', model, '--data', data, '--max-length', '96', '--tokens', 'all', '--validation-split', '0.05', '--seed', '7', '--json'])).toBe(0);
    expect(await evalCommand(['--model', model, '--data', data, '--max-length', '96', '--validation-split', '0.05', '--seed', '7'])).toBe(0);
    vi.restoreAllMocks();
    const [json = '', ...table] = cap.stdout().trim().split('\n');
    const all = JSON.parse(json) as EvalJson;
    expect(all.examples).toBe(13);
    const response = /(\d+) scored tokens \(responses only\)/.exec(table[0] ?? '');
    expect(Number(response?.[1])).toBeGreaterThan(0);
    expect(all.tokens).toBeGreaterThan(2 * Number(response?.[1]));
    expect(table[2]).toMatch(/^base\s+\d+\.\d{4}\s+\d+\.\d{2}$/);
  });

  it('names the flag that is missing or wrong', async () => {
    await expect(evalCommand(['--data', 'x.json'])).rejects.toThrow('peft-ts eval: --model is required');
    await expect(evalCommand(['--model', model, '--data', 'x.json', '--tokens', 'some'])).rejects.toThrow('--tokens: expected one of response, all, got "some"');
    await expect(evalCommand(['--model', model, '--data', join(work, 'missing.json')])).rejects.toThrow(/missing\.json/);
  });
});
