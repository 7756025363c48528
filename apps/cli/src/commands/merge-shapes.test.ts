// merge checks every adapter tensor's shape against the base before it writes anything, and
// refuses a wrong one in one line naming the tensor, the expected and the found shape (exit 3).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, writeSafetensors, type TensorSource } from '@peft-ts/safetensors/node';
import { EXIT, errorLine, exitCodeFor } from '../errors.js';
import { merge } from './merge.js';
import { FIXTURES } from '../testing/tiny-model.js';

const LLAMA = join(FIXTURES, 'hf-tiny/llama');

/** The llama fixture adapter with one tensor cut to `shape` (its first values kept). */
async function adapterWith(key: string, shape: number[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'peft-cli-bad-adapter-'));
  await mkdir(dir, { recursive: true });
  copyFileSync(join(LLAMA, 'adapter/adapter_config.json'), join(dir, 'adapter_config.json'));
  const ckpt = await Checkpoint.open(join(LLAMA, 'adapter/adapter_model.safetensors'));
  const tensors: TensorSource[] = [];
  for (const name of ckpt.names()) {
    const data = await ckpt.readF32(name);
    const s = name === key ? shape : ckpt.info(name).shape;
    tensors.push({ name, dtype: 'F32', shape: s, data: data.slice(0, s.reduce((a, b) => a * b, 1)) });
  }
  await ckpt.close();
  expect(tensors.some((t) => t.name === key)).toBe(true);
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('peft-ts merge shape check', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('names the tensor, the expected and the found shape, and writes nothing', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-merge-shape-'));
    const cases: [string, number[], string][] = [
      ['base_model.model.model.layers.1.mlp.down_proj.lora_B.weight', [60, 4], '[64, 4]'],
      ['base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight', [4, 32], '[4, 64]'],
    ];
    let progress = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      progress += String(chunk);
      return true;
    });
    for (const [key, shape, expected] of cases) {
      const adapter = await adapterWith(key, shape);
      const out = join(work, 'merged');
      const e = await rejection(merge([join(LLAMA, 'model'), adapter, out]));
      expect(errorLine(e)).toBe(`peft-ts: ${join(adapter, 'adapter_model.safetensors')}: tensor "${key}".shape: expected ${expected} (from the base in ${join(LLAMA, 'model')}), got [${shape.join(', ')}]`);
      expect(exitCodeFor(e)).toBe(EXIT.input);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work)).toEqual([]);
    }
    // Refused before the first tensor was merged.
    expect(progress).not.toMatch(/merge \d+\/\d+/);
  });
});
