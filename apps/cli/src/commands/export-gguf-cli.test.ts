// export gguf / gguf-lora on bad input: one line naming the path or field, exit 3; usage errors
// exit 2. No GPU and no llama.cpp needed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../errors.js';
import { LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { exportGguf } from './export-gguf.js';
import { exportGgufLora } from './export-gguf-lora.js';

let scratch = '';
let model = '';
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'peft-gguf-cli-'));
  model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR, hidden: 32 });
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
  await rm(model, { recursive: true, force: true });
});

async function failure(run: () => Promise<number>): Promise<{ code: number; message: string }> {
  try {
    await run();
  } catch (error) {
    return { code: exitCodeFor(error), message: (error as Error).message };
  }
  throw new Error('expected a failure');
}

describe('export gguf: errors', () => {
  it('usage errors exit 2', async () => {
    expect((await failure(() => exportGguf([]))).code).toBe(2);
    const t = await failure(() => exportGguf([model, join(scratch, 'a.gguf'), '--type', 'q4']));
    expect(t.code).toBe(2);
    expect(t.message).toMatch(/--type: expected one of f32, f16, bf16, q8_0, got "q4"/);
  });

  it('a missing model directory or an existing output exits 3 naming the path', async () => {
    const missing = await failure(() => exportGguf([join(scratch, 'nope'), join(scratch, 'a.gguf')]));
    expect(missing.code).toBe(3);
    expect(missing.message).toContain(join(scratch, 'nope'));
    const out = join(scratch, 'exists.gguf');
    await writeFile(out, 'x');
    const exists = await failure(() => exportGguf([model, out]));
    expect(exists.code).toBe(3);
    expect(exists.message).toMatch(/exists\.gguf: expected a new file, got one that exists; pass --overwrite/);
  });

  it('gguf-lora without a local base exits 3 asking for --base', async () => {
    const adapter = join(scratch, 'adapter');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(adapter);
    await writeFile(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'], base_model_name_or_path: 'org/some-hub-model' }));
    await writeFile(join(adapter, 'adapter_model.safetensors'), '');
    const f = await failure(() => exportGgufLora([adapter, join(scratch, 'l.gguf')]));
    expect(f.code).toBe(3);
    expect(f.message).toMatch(/adapter_config\.json: base_model_name_or_path: expected a local model directory \(or pass --base <model-dir>\), got org\/some-hub-model/);
  });
});
