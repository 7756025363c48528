// The whole command-line chain on a tiny model: quantize to NF4, QLoRA-train on the 4-bit
// checkpoint, merge the adapter into that 4-bit base, and generate from the merged model; the
// merged model answers as the 4-bit base with the adapter does.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoraModel } from '@peft-ts/lora/node';
import { loadModel, type CausalLM } from '@peft-ts/models/node';
import { createRuntime, fromArray, tidy } from '@peft-ts/tensor';
import { modelLoadOptions } from '@peft-ts/trainer/node';
import { generateCommand } from './generate.js';
import { merge } from './merge.js';
import { quantize } from './quantize.js';
import { train } from './train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureOutput } from '../testing/capture.js';


async function greedy(args: string[]): Promise<number[]> {
  const out = captureOutput();
  expect(await generateCommand([...args, '--prompt', 'Write words number 1.', '--max-new-tokens', '6', '--json'])).toBe(0);
  vi.restoreAllMocks();
  return (JSON.parse(out.stdout()) as { output_ids: number[] }).output_ids;
}

describe('peft-ts quantize -> train -> merge -> generate', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('merges an adapter trained on a 4-bit base into that base', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-chain-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR, hidden: 32 });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(4, 4));
    const q = join(work, 'q');
    const run = join(work, 'run');
    const merged = join(work, 'merged');
    captureOutput();
    expect(await quantize([model, q])).toBe(0);
    expect(JSON.parse(readFileSync(join(q, 'config.json'), 'utf8'))).toHaveProperty('quantization_config');
    expect(
      await train(['--model', q, '--data', data, '--output', run, '--max-steps', '3', '--batch-size', '2', '--grad-accum', '1', '--validation-split', '0', '--lr', '0.05', '--max-length', '64']),
    ).toBe(0);
    expect(await merge([q, join(run, 'adapter'), merged])).toBe(0);
    vi.restoreAllMocks();
    expect(existsSync(join(merged, 'tokenizer.json'))).toBe(true);
    const config = JSON.parse(readFileSync(join(merged, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).not.toHaveProperty('quantization_config');

    const fromMerged = await greedy([merged]);
    const fromAdapter = await greedy([q, '--adapter', join(run, 'adapter')]);
    const fromBase = await greedy([q]);
    expect(fromMerged).toHaveLength(6);
    // Training changed the answer, so the merge carried a real update.
    expect(fromMerged).not.toEqual(fromBase);
    expect(fromMerged).toEqual(fromAdapter);

    const rt = await createRuntime({ seed: 0 });
    try {
      const ids = Int32Array.from([1, 14350, 3838, 1353, 29871, 29896, 29889, 13]);
      const logitsOf = async (m: CausalLM): Promise<Float32Array> => {
        const t = tidy(() => m.forward(fromArray(rt, ids, [1, ids.length], 'i32')));
        const v = (await t.toArray()) as Float32Array;
        t.dispose();
        m.dispose();
        return v;
      };
      const viaMerged = await logitsOf(await loadModel(rt, merged));
      const base = await loadModel(rt, q, await modelLoadOptions(q, false));
      const lora = new LoraModel(base);
      await lora.loadAdapter(join(run, 'adapter'));
      lora.train(false);
      const viaAdapter = await logitsOf(base);
      const plain = await logitsOf(await loadModel(rt, q, await modelLoadOptions(q, false)));
      const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? 0))), 0);
      const update = maxDiff(viaAdapter, plain);
      expect(update).toBeGreaterThan(1e-2);
      // Dequantized base plus the update equals the 4-bit base with the adapter, to round-off.
      expect(maxDiff(viaMerged, viaAdapter)).toBeLessThan(1e-4);
    } finally {
      rt.destroy();
    }
  });
});
