// --json on the commands that report something: stdout holds exactly one JSON object with the
// numbers the text reports, and progress or log lines stay on stderr.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { merge } from './merge.js';
import { quantize } from './quantize.js';
import { train } from './train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';

async function stdoutOf(fn: (argv: string[]) => Promise<number>, argv: string[]): Promise<string> {
  let buf = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    buf += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await fn(argv)).toBe(0);
    return buf;
  } finally {
    vi.restoreAllMocks();
  }
}

describe('peft-ts --json', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('train, merge and quantize print one JSON object', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-json-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(3, 3));
    const run = join(work, 'run');
    const trained = JSON.parse(
      await stdoutOf(train, ['--model', model, '--data', data, '--output', run, '--lora', '--max-steps', '2', '--batch-size', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64', '--json']),
    ) as Record<string, unknown>;
    expect(trained.steps).toBe(2);
    expect(trained.interrupted).toBe(false);
    expect(trained.adapter_dir).toBe(join(run, 'adapter'));
    expect(trained.metrics).toBe(join(run, 'metrics.jsonl'));
    expect(typeof trained.final_loss).toBe('number');
    expect(trained.tokens).toBeGreaterThan(0);
    expect(trained.tokens_per_second).toBeCloseTo((trained.tokens as number) / (trained.seconds as number), 6);
    expect(trained.peak_gpu_bytes).toBeGreaterThan(0);

    const merged = JSON.parse(await stdoutOf(merge, [model, join(run, 'adapter'), join(work, 'merged'), '--json'])) as Record<string, unknown>;
    expect(merged).toEqual({ out_dir: join(work, 'merged'), merged_modules: 7, files: ['model.safetensors'] });

    const quantized = JSON.parse(await stdoutOf(quantize, [model, join(work, 'q'), '--json'])) as { out_dir: string; files: string[]; quantized: string[]; kept: string[] };
    expect(quantized.out_dir).toBe(join(work, 'q'));
    expect(quantized.files).toEqual(['model.safetensors']);
    expect(quantized.quantized).toHaveLength(7);
    expect(quantized.kept).toContain('lm_head.weight');
  });
});
