// generate --merge-in-memory: the adapter added into the dense base weights decodes the same
// greedy ids as the adapter applied on the fly; it needs an adapter and a dense base.
import { describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCommand } from './generate.js';
import { train } from './train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { UsageError } from '../args.js';

async function quiet(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await run(), out };
  } finally {
    vi.restoreAllMocks();
  }
}

describe('peft-ts generate --merge-in-memory', () => {
  it('gives the same greedy ids as the unmerged adapter, and refuses without an adapter or with --qlora', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-merge-mem-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(4, 3));
    const run = join(work, 'run');
    // Two optimizer steps at a high rate: the adapter's B is far from zero, so it changes the output.
    const trained = await quiet(() =>
      train(['--model', model, '--data', data, '--output', run, '--lora', '--max-steps', '2', '--batch-size', '2', '--lr', '0.05', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64']),
    );
    expect(trained.code).toBe(0);
    const args = ['--prompt', 'Say something', '--max-new-tokens', '8', '--json'];
    const ids = async (extra: string[]): Promise<number[]> => {
      const r = await quiet(() => generateCommand([model, ...args, ...extra]));
      expect(r.code).toBe(0);
      return (JSON.parse(r.out) as { output_ids: number[] }).output_ids;
    };
    const base = await ids([]);
    const adapted = await ids(['--adapter', join(run, 'adapter')]);
    const merged = await ids(['--adapter', join(run, 'adapter'), '--merge-in-memory']);
    expect(merged).toEqual(adapted);
    expect(adapted).toHaveLength(8);
    expect(base).not.toEqual(adapted);
    await expect(generateCommand([model, ...args, '--merge-in-memory'])).rejects.toThrow(UsageError);
    await expect(generateCommand([model, ...args, '--adapter', join(run, 'adapter'), '--merge-in-memory', '--qlora'])).rejects.toThrow(/needs dense base weights/);
  });
});
