// Sequences past max_position_embeddings: rotary models compute the angles for every position
// (with one warning), exactly as a config with a larger limit would; learned positions refuse.
import { describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnsupportedError } from '@peft-ts/errors';
import { fromArray, tidy } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { generate, loadModel } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

async function withMaxPositions(arch: string, key: string, value: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `peft-pos-${arch}-`));
  await cp(join(fixtures, arch, 'model'), dir, { recursive: true });
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  config[key] = value;
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

describe('positions past the model limit', () => {
  it.each(['llama', 'mistral', 'qwen2', 'phi3'])('%s: logits past max_position_embeddings equal those of a longer limit, with one warning', async (arch) => {
    const rt = await testRuntime();
    const T = 40;
    const ids = Int32Array.from({ length: T }, (_, i) => 3 + ((i * 37) % 300));
    const short = await loadModel(rt, await withMaxPositions(arch, 'max_position_embeddings', 16));
    const long = await loadModel(rt, await withMaxPositions(arch, 'max_position_embeddings', 64));
    const warnings: string[] = [];
    short.onWarning = (m) => warnings.push(m);
    const a = await tidy(() => short.forward(fromArray(rt, ids, [1, T], 'i32'))).toArray();
    const b = await tidy(() => long.forward(fromArray(rt, ids, [1, T], 'i32'))).toArray();
    expect(Array.from(a).every(Number.isFinite)).toBe(true);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/sequence length 40 is past max_position_embeddings 16/);

    // Generation past the limit: the same tokens as with the longer limit.
    const prompt = [...ids.slice(0, 12)];
    const g1 = await generate(short, [prompt], { maxNewTokens: 10, eosTokenIds: [] });
    const g2 = await generate(long, [prompt], { maxNewTokens: 10, eosTokenIds: [] });
    expect(g1.tokens).toEqual(g2.tokens);
    short.dispose();
    long.dispose();
  });

  it('learned positions (GPT-2) refuse a sequence past n_positions', async () => {
    const rt = await testRuntime();
    const model = await loadModel(rt, join(fixtures, 'gpt2', 'model'));
    const limit = model.config.maxPositions;
    const ids = new Int32Array(limit + 1).fill(5);
    expect(() => tidy(() => model.forward(fromArray(rt, ids, [1, limit + 1], 'i32')))).toThrow(UnsupportedError);
    expect(() => model.reservePositions(limit + 1)).toThrow(new RegExp(`n_positions ${limit}`));
    model.dispose();
  });
});
