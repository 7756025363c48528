// inspect <file.gguf>: the summary of a GGUF file and the warnings for known export pitfalls.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTensor, gguf, writeGguf, type GgufMetadata } from '@peft-ts/gguf/node';
import { ggufSummary } from './inspect-gguf.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peft-inspect-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, extra: [string, ReturnType<typeof gguf.str>][]): Promise<string> {
  const md: GgufMetadata = new Map([
    ['general.architecture', gguf.str('llama')],
    ['llama.block_count', gguf.u32(1)],
    ['tokenizer.ggml.model', gguf.str('llama')],
    ['tokenizer.ggml.tokens', gguf.strArray(['<unk>', '<s>', '</s>', 'a'])],
    ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
    ...extra,
  ]);
  const path = join(dir, name);
  await writeGguf(path, md, [
    { name: 'token_embd.weight', shape: [4, 32], type: 'Q8_0', data: () => encodeTensor(new Float32Array(128).fill(0.5), 'Q8_0', 32) },
    { name: 'output_norm.weight', shape: [32], type: 'F32', data: () => encodeTensor(new Float32Array(32), 'F32') },
  ]);
  return path;
}

describe('ggufSummary', () => {
  it('summarises architecture, tensor types, tokenizer and special tokens, with no warning for a sound file', async () => {
    const s = await ggufSummary(
      await file('ok.gguf', [
        ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
        ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
        ['tokenizer.chat_template', gguf.str("{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}")],
      ]),
    );
    expect(s.architecture).toBe('llama');
    expect(s.tensorTypes).toEqual({ Q8_0: 1, F32: 1 });
    expect(s.hyperparameters).toEqual({ block_count: 1 });
    expect(s.specialTokens).toEqual({ bos: { id: 1, text: '<s>' }, eos: { id: 2, text: '</s>' } });
    expect(s.tokenizer).toEqual({ model: 'llama', pre: null, tokens: 4, merges: 0, addBos: true, addEos: null });
    expect(s.warnings).toEqual([]);
  });

  it('warns about pad == eos, a template that never emits EOS, and a BOS added twice', async () => {
    const s = await ggufSummary(
      await file('bad.gguf', [
        ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
        ['tokenizer.ggml.padding_token_id', gguf.u32(2)],
        ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
        ['tokenizer.chat_template', gguf.str("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}")],
      ]),
    );
    expect(s.warnings).toEqual([
      expect.stringMatching(/padding token is the EOS token \(id 2\)/),
      expect.stringMatching(/chat template never emits the EOS token "<\/s>"/),
      expect.stringMatching(/add_bos_token is true and the chat template also writes the BOS token "<s>"/),
    ]);
  });
});
