// An adapter trained on another model family whose shapes happen to fit: merge and generate go
// ahead but say so in one line; an adapter on its own base says nothing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCommand } from './generate.js';
import { merge } from './merge.js';
import { train } from './train.js';
import { alpacaJsonl, FIXTURES, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';

async function stderrOf(run: () => Promise<number>): Promise<string[]> {
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    expect(await run()).toBe(0);
  } finally {
    vi.restoreAllMocks();
  }
  return err.split('\n').filter((l) => l.includes('warning'));
}

function editJson(path: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(j);
  writeFileSync(path, JSON.stringify(j));
}

describe('peft-ts adapter and base mismatch', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('merge warns when a llama adapter goes into a mistral base, by architecture and by Hub name', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-mismatch-'));
    const llama = join(FIXTURES, 'hf-tiny/llama');
    const mistral = join(FIXTURES, 'hf-tiny/mistral/model');
    expect(await stderrOf(() => merge([join(llama, 'model'), join(llama, 'adapter'), join(work, 'same')]))).toEqual([]);
    expect(await stderrOf(() => merge([mistral, join(llama, 'adapter'), join(work, 'other')]))).toEqual([
      `peft-ts merge: warning: the adapter ${join(llama, 'adapter')} was trained on LlamaForCausalLM (../model), but the base ${mistral} is MistralForCausalLM; its shapes fit, the result is unlikely to be useful`,
    ]);

    // Hub ids on both sides: the names differ.
    const adapter = join(work, 'adapter');
    const base = join(work, 'base');
    cpSync(join(llama, 'adapter'), adapter, { recursive: true });
    cpSync(mistral, base, { recursive: true });
    editJson(join(adapter, 'adapter_config.json'), (j) => (j.base_model_name_or_path = 'meta-llama/Llama-2-7b-hf'));
    editJson(join(base, 'config.json'), (j) => (j._name_or_path = 'mistralai/Mistral-7B-v0.1'));
    expect(await stderrOf(() => merge([base, adapter, join(work, 'hub')]))).toEqual([
      `peft-ts merge: warning: the adapter ${adapter} was trained on meta-llama/Llama-2-7b-hf, but the base ${base} is mistralai/Mistral-7B-v0.1 (MistralForCausalLM); its shapes fit, the result is unlikely to be useful`,
    ]);
    editJson(join(base, 'config.json'), (j) => (j._name_or_path = 'Meta-Llama/Llama-2-7b-hf'));
    expect(await stderrOf(() => merge([base, adapter, join(work, 'hub-same')]))).toEqual([]);
  });

  it('generate warns for an adapter trained on another architecture', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-mismatch-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(2, 3));
    const run = join(work, 'run');
    await stderrOf(() => train(['--model', model, '--data', data, '--output', run, '--lora', '--max-steps', '1', '--batch-size', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64']));
    const args = ['--adapter', join(run, 'adapter'), '--prompt', 'hi', '--max-new-tokens', '1', '--json'];
    expect(await stderrOf(() => generateCommand([model, ...args]))).toEqual([]);
    const mistral = join(work, 'mistral');
    cpSync(model, mistral, { recursive: true });
    editJson(join(mistral, 'config.json'), (j) => {
      j.model_type = 'mistral';
      j.architectures = ['MistralForCausalLM'];
    });
    const warnings = await stderrOf(() => generateCommand([mistral, ...args]));
    expect(warnings).toEqual([`peft-ts generate: warning: the adapter ${join(run, 'adapter')} was trained on LlamaForCausalLM (${model}), but the base ${mistral} is MistralForCausalLM; its shapes fit, the result is unlikely to be useful`]);
  });
});
