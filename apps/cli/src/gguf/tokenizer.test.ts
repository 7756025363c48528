// Tokenizers that llama.cpp cannot reproduce are refused with the field named; the special ids,
// add_bos and the chat template are carried over from the real Llama 2 and Qwen3 files.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GgufMetadata } from '@peft-ts/gguf';
import { LLAMA2_TOKENIZER_DIR } from '../testing/tiny-model.js';
import { QWEN3_TOKENIZER_DIR } from './tiny-models.test-util.js';
import { tokenizerMetadata } from './tokenizer.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peft-gguf-tok-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function withTokenizer(base: string, edit: (t: Record<string, unknown>) => void): Promise<string> {
  const t = JSON.parse(await readFile(join(base, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  edit(t);
  const d = await mkdtemp(join(dir, 't-'));
  await writeFile(join(d, 'tokenizer.json'), JSON.stringify(t));
  await writeFile(join(d, 'tokenizer_config.json'), await readFile(join(base, 'tokenizer_config.json')));
  return d;
}

const ids = { bos: null, eos: [], pad: null };

describe('tokenizerMetadata', () => {
  it('Llama 2: sentencepiece-style BPE with the space prefix, BOS added, unk/bos/eos ids', async () => {
    const md: GgufMetadata = new Map();
    const s = await tokenizerMetadata(LLAMA2_TOKENIZER_DIR, 32000, ids, md);
    expect(s).toEqual({ model: 'llama', pre: null, tokens: 32000, warnings: [] });
    expect(md.get('tokenizer.ggml.add_space_prefix')?.value).toBe(true);
    expect(md.get('tokenizer.ggml.add_bos_token')?.value).toBe(true);
    expect([md.get('tokenizer.ggml.unknown_token_id')?.value, md.get('tokenizer.ggml.bos_token_id')?.value, md.get('tokenizer.ggml.eos_token_id')?.value]).toEqual([0, 1, 2]);
    // <0x0A> is byte token 13, typed as a byte (6).
    expect((md.get('tokenizer.ggml.token_type')?.value as number[])[13]).toBe(6);
  });

  it('Qwen3: byte-level BPE with the qwen2 pre-tokenizer, the chat template, and an NFC warning', async () => {
    const md: GgufMetadata = new Map();
    const s = await tokenizerMetadata(QWEN3_TOKENIZER_DIR, 151680, ids, md);
    expect(s.model).toBe('gpt2');
    expect(s.pre).toBe('qwen2');
    expect(s.warnings).toEqual([expect.stringMatching(/NFC/)]);
    expect(md.get('tokenizer.ggml.eos_token_id')?.value).toBe(151645);
    expect(md.get('tokenizer.ggml.padding_token_id')?.value).toBe(151643);
    expect(md.get('tokenizer.ggml.add_bos_token')?.value).toBe(false);
    expect(String(md.get('tokenizer.chat_template')?.value)).toContain('<|im_start|>');
    // Padded rows of the embedding become unused tokens.
    expect((md.get('tokenizer.ggml.tokens')?.value as string[])[151679]).toBe('[PAD151679]');
  });

  it('refuses what llama.cpp would tokenize differently, naming the field', async () => {
    const unigram = await withTokenizer(LLAMA2_TOKENIZER_DIR, (t) => ((t.model as Record<string, unknown>).type = 'Unigram'));
    await expect(tokenizerMetadata(unigram, 32000, ids, new Map())).rejects.toThrow(/tokenizer.json: model.type: unsupported tokenizer model "Unigram"; supported: BPE/);
    const nfkc = await withTokenizer(LLAMA2_TOKENIZER_DIR, (t) => (t.normalizer = { type: 'NFKC' }));
    await expect(tokenizerMetadata(nfkc, 32000, ids, new Map())).rejects.toThrow(/normalizer: unsupported sentencepiece normalizer step .* "NFKC"/);
    const regex = await withTokenizer(QWEN3_TOKENIZER_DIR, (t) => {
      const pre = t.pre_tokenizer as { pretokenizers: { pattern?: { Regex: string } }[] };
      const split = pre.pretokenizers[0];
      if (split?.pattern) split.pattern.Regex = '\\p{L}+|\\s+';
    });
    await expect(tokenizerMetadata(regex, 151680, ids, new Map())).rejects.toThrow(/pre_tokenizer: unsupported pre-tokenizer split/);
    await expect(tokenizerMetadata(LLAMA2_TOKENIZER_DIR, 1000, ids, new Map())).rejects.toThrow(/model.vocab.*expected an id below the model's vocab_size 1000/);
  });
});
