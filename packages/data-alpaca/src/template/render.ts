// Rendering an example to text plus the character spans that are trained: the masks are
// derived from these spans and token offsets, never by searching token ids for a marker.
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import type { ChatMessage, Example, InstructionExample } from '../io/formats.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { fillPlaceholders, resolveTemplate } from './templates.js';
import type { InstructionTemplate, ModelChatTemplate, Template, TemplateName } from './templates.js';

/** A contiguous character span of the rendered text, [start, end). */
export interface Segment {
  start: number;
  end: number;
  trained: boolean;
}

export interface RenderedExample {
  text: string;
  /** Contiguous, in order, covering the whole text. */
  segments: Segment[];
  /**
   * Whether tokenizing adds the post-processor's special tokens (BOS). False for model chat
   * templates, which write their own, as transformers' apply_chat_template does.
   */
  addSpecialTokens: boolean;
  /** Whether an EOS was appended to the text by this package (so a post-processor EOS is dropped). */
  appendedEos: boolean;
}

export interface RenderOptions {
  /** A template or its name; 'auto' (default): Alpaca for instructions, the model's chat template for chats (tag format if it has none). */
  template?: Template | TemplateName | 'auto';
  /** 'response' (default): loss on responses/assistant turns only; 'all': on every token. */
  trainOn?: 'response' | 'all';
  /** Append the EOS token after every response (default true) so the model learns to stop. */
  appendEos?: boolean;
}

class SegmentBuilder {
  text = '';
  readonly segments: Segment[] = [];

  push(text: string, trained: boolean): void {
    if (text.length === 0) return;
    const start = this.text.length;
    this.text += text;
    const last = this.segments[this.segments.length - 1];
    if (last?.trained === trained) last.end = this.text.length;
    else this.segments.push({ start, end: this.text.length, trained });
  }
}

function where(example: Example): string {
  return example.source ? `${example.source.file}:${example.source.line}` : 'example';
}

function eosText(tokenizer: Tokenizer | undefined, example: Example): string {
  if (tokenizer?.eosToken == null || tokenizer.eosId === null) {
    throw new UnsupportedError({ what: 'appendEos without an EOS token', got: 'no eos_token', where: `${where(example)}: renderExample` });
  }
  const ids = tokenizer.encode(tokenizer.eosToken, { addSpecialTokens: false });
  if (ids.length !== 1 || ids[0] !== tokenizer.eosId) {
    throw new UnsupportedError({ what: 'EOS token that does not encode to its own id', got: tokenizer.eosToken, where: 'renderExample' });
  }
  return tokenizer.eosToken;
}

function asInstruction(example: Example): InstructionExample {
  if (example.kind === 'instruction') return example;
  const [first, second, ...rest] = example.messages;
  if (first?.role === 'user' && second?.role === 'assistant' && rest.length === 0) {
    return { kind: 'instruction', instruction: first.content, input: '', output: second.content };
  }
  throw new UnsupportedError({
    what: 'conversation for an instruction template',
    got: example.messages.map((m) => m.role).join(','),
    supported: ['user,assistant'],
    where: `${where(example)}: use a chat template for multi-turn or system messages`,
  });
}

function asMessages(example: Example): ChatMessage[] {
  if (example.kind === 'chat') return example.messages;
  const user = example.input === '' ? example.instruction : `${example.instruction}\n\n${example.input}`;
  return [
    { role: 'user', content: user },
    { role: 'assistant', content: example.output },
  ];
}

function renderInstruction(example: Example, template: InstructionTemplate, out: SegmentBuilder, eos: string | null): void {
  const record = asInstruction(example);
  const hasInput = record.input !== '';
  if (hasInput && !template.prompt.includes('{input}')) {
    throw new FormatError({ file: where(example), field: 'input', expected: `a template with an {input} placeholder (template ${template.name} has none)`, got: record.input });
  }
  out.push(fillPlaceholders(hasInput ? template.prompt : template.promptNoInput, record), false);
  out.push(fillPlaceholders(template.response, record), true);
  if (eos !== null) out.push(eos, true);
}

function renderTagChat(example: Example, out: SegmentBuilder, eos: string | null): void {
  for (const message of asMessages(example)) {
    if (message.role !== 'assistant') {
      out.push(`<|${message.role}|>\n${message.content}\n`, false);
      continue;
    }
    out.push('<|assistant|>\n', false);
    out.push(`${message.content}\n`, true);
    if (eos !== null) out.push(eos, true);
  }
}

// Finds each assistant turn in the rendered conversation. The turn starts where the
// conversation so far, rendered with add_generation_prompt, ends (so text the template puts
// before the content, such as Qwen3's empty <think></think>, is trained), or failing that
// where its content is found; it ends after its content plus the added token (<|im_end|>,
// </s>, <|eot_id|>...) that closes the turn, if one follows across whitespace only.
function renderModelChat(
  example: Example,
  template: ModelChatTemplate,
  tokenizer: Tokenizer,
  out: SegmentBuilder,
  trainAll: boolean,
  appendEos: boolean,
): boolean {
  const messages = asMessages(example);
  const variables = template.variables ?? {};
  const full = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false, variables });
  const closers = tokenizer.addedTokenTexts();
  const spans: Array<[number, number]> = [];
  let cursor = 0;
  messages.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    let start = -1;
    try {
      const prefix = tokenizer.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true, variables });
      if (prefix.length >= cursor && full.startsWith(prefix)) start = prefix.length;
    } catch {
      // Templates may refuse a conversation that starts with the assistant; find the content instead.
    }
    let at = full.indexOf(message.content, start >= 0 ? start : cursor);
    let length = message.content.length;
    if (at < 0) {
      const trimmed = message.content.trim();
      at = full.indexOf(trimmed, start >= 0 ? start : cursor);
      length = trimmed.length;
    }
    if (at < 0) {
      throw new UnsupportedError({
        what: 'chat template output',
        got: `assistant turn ${i} whose content the template rewrote`,
        where: `${where(example)}: renderExample (the trained span is located by the content)`,
      });
    }
    if (start < 0) start = at;
    let end = at + length;
    let k = end;
    while (k < full.length && /\s/.test(full.charAt(k))) k += 1;
    const closer = closers.find((t) => full.startsWith(t, k));
    if (closer !== undefined) end = k + closer.length;
    spans.push([start, end]);
    cursor = end;
  });
  if (trainAll) out.push(full, true);
  else {
    let at = 0;
    for (const [start, end] of spans) {
      out.push(full.slice(at, start), false);
      out.push(full.slice(start, end), true);
      at = end;
    }
    out.push(full.slice(at), false);
  }
  // Append EOS only if the last turn is the assistant's and its closing token is not already EOS.
  const lastSpan = spans[spans.length - 1];
  const last = messages[messages.length - 1];
  if (appendEos && last?.role === 'assistant' && lastSpan) {
    const eos = eosText(tokenizer, example);
    if (!full.slice(lastSpan[0], lastSpan[1]).endsWith(eos)) {
      out.push(eos, true);
      return true;
    }
  }
  return false;
}

/**
 * Renders an example with a template: the full text and which character spans are trained.
 * The tokenizer supplies the EOS text and the model's chat template.
 */
export function renderExample(example: Example, tokenizer: Tokenizer | undefined, options: RenderOptions = {}): RenderedExample {
  const requested = options.template ?? 'auto';
  const template: Template =
    requested === 'auto'
      ? example.kind === 'instruction'
        ? resolveTemplate('alpaca')
        : resolveTemplate(tokenizer?.chatTemplate != null ? 'model' : 'chat')
      : resolveTemplate(requested);
  const trainAll = options.trainOn === 'all';
  if (options.trainOn !== undefined && options.trainOn !== 'all' && options.trainOn !== 'response') {
    throw new UnsupportedError({ what: 'trainOn', got: options.trainOn, supported: ['response', 'all'], where: 'renderExample' });
  }
  const appendEos = options.appendEos ?? true;
  const out = new SegmentBuilder();
  let appendedEos = false;
  if (template.kind === 'model-chat') {
    if (!tokenizer) throw new UnsupportedError({ what: 'model chat template without a tokenizer', got: template.name, where: 'renderExample' });
    appendedEos = renderModelChat(example, template, tokenizer, out, trainAll, appendEos);
  } else {
    const eos = appendEos ? eosText(tokenizer, example) : null;
    appendedEos = eos !== null;
    if (template.kind === 'instruction') renderInstruction(example, template, out, eos);
    else renderTagChat(example, out, eos);
  }
  const segments = trainAll ? [{ start: 0, end: out.text.length, trained: true }] : out.segments;
  return { text: out.text, segments, addSpecialTokens: template.kind !== 'model-chat', appendedEos };
}
