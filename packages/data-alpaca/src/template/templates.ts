// Prompt templates: the Stanford Alpaca layout, user-written instruction templates with
// {instruction}/{input}/{output} placeholders, the `<|user|>`/`<|assistant|>` tag format and
// the model's own chat template.
import { FormatError, UnsupportedError } from '@peft-ts/errors';

/**
 * A single-turn template. The prompt is never trained on (unless trainOn is 'all'); the
 * response is. Placeholders: {instruction}, {input}, {output}; other braces are left as text.
 */
export interface InstructionTemplate {
  kind: 'instruction';
  name: string;
  /** Prompt for examples with a non-empty input. */
  prompt: string;
  /** Prompt for examples whose input is empty. */
  promptNoInput: string;
  /** The trained part; usually just '{output}'. */
  response: string;
}

/**
 * The tag chat format, per turn: `<|system|>\n{content}\n`, `<|user|>\n{content}\n`,
 * `<|assistant|>\n{content}\n`. The assistant's `{content}\n` is the response, followed by EOS.
 */
export interface TagChatTemplate {
  kind: 'tag-chat';
  name: string;
}

/** The model's `chat_template` from tokenizer_config.json, rendered with Jinja. */
export interface ModelChatTemplate {
  kind: 'model-chat';
  name: string;
  /** Extra template variables, e.g. `{ enable_thinking: false }`. */
  variables?: Readonly<Record<string, unknown>>;
}

export type Template = InstructionTemplate | TagChatTemplate | ModelChatTemplate;

/** Names that `resolveTemplate` understands. */
export type TemplateName = 'alpaca' | 'chat' | 'model';

/** Stanford Alpaca's prompt for records with an input. */
export const ALPACA_PROMPT_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';

/** Stanford Alpaca's prompt for records without an input. */
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

export const ALPACA_TEMPLATE: InstructionTemplate = Object.freeze({
  kind: 'instruction',
  name: 'alpaca',
  prompt: ALPACA_PROMPT_INPUT,
  promptNoInput: ALPACA_PROMPT_NO_INPUT,
  response: '{output}',
});

export const CHAT_TEMPLATE: TagChatTemplate = Object.freeze({ kind: 'tag-chat', name: 'chat' });

export const MODEL_CHAT_TEMPLATE: ModelChatTemplate = Object.freeze({ kind: 'model-chat', name: 'model' });

const PLACEHOLDER = /\{(instruction|input|output)\}/g;

function count(text: string, placeholder: string): number {
  return text.split(placeholder).length - 1;
}

/**
 * A user template. A string is split at `{output}`: what precedes it is the prompt, `{output}`
 * and what follows is the response, e.g. `"Q: {instruction}\n{input}\nA: {output}"`. Without
 * an explicit `promptNoInput`, examples with empty input use the prompt with `{input}` removed.
 */
export function instructionTemplate(
  spec: string | { prompt: string; promptNoInput?: string; response?: string },
  name = 'custom',
): InstructionTemplate {
  const where = `template ${JSON.stringify(name)}`;
  let prompt: string;
  let response: string;
  let promptNoInput: string | undefined;
  if (typeof spec === 'string') {
    if (count(spec, '{output}') !== 1) {
      throw new FormatError({ file: where, field: 'template', expected: 'exactly one {output} placeholder', got: spec });
    }
    const at = spec.indexOf('{output}');
    prompt = spec.slice(0, at);
    response = spec.slice(at);
  } else {
    prompt = spec.prompt;
    response = spec.response ?? '{output}';
    promptNoInput = spec.promptNoInput;
    if (count(response, '{output}') !== 1) {
      throw new FormatError({ file: where, field: 'response', expected: 'exactly one {output} placeholder', got: response });
    }
  }
  if (!prompt.includes('{instruction}')) {
    throw new FormatError({ file: where, field: 'prompt', expected: 'an {instruction} placeholder', got: prompt });
  }
  if (prompt.includes('{output}') || (promptNoInput?.includes('{output}') ?? false)) {
    throw new FormatError({ file: where, field: 'prompt', expected: 'no {output} placeholder before the response', got: prompt });
  }
  if (promptNoInput?.includes('{input}')) {
    throw new FormatError({ file: where, field: 'promptNoInput', expected: 'no {input} placeholder', got: promptNoInput });
  }
  return { kind: 'instruction', name, prompt, promptNoInput: promptNoInput ?? prompt.replaceAll('{input}', ''), response };
}

/** Fills {instruction}, {input} and {output} in one pass, so values are never re-expanded. */
export function fillPlaceholders(text: string, values: { instruction: string; input: string; output: string }): string {
  return text.replace(PLACEHOLDER, (_, key: 'instruction' | 'input' | 'output') => values[key]);
}

/** 'alpaca' | 'chat' | 'model' to the template object; a template object passes through. */
export function resolveTemplate(template: Template | TemplateName): Template {
  if (typeof template === 'object') return template;
  switch (template) {
    case 'alpaca':
      return ALPACA_TEMPLATE;
    case 'chat':
      return CHAT_TEMPLATE;
    case 'model':
      return MODEL_CHAT_TEMPLATE;
    default:
      throw new UnsupportedError({ what: 'template', got: template, supported: ['alpaca', 'chat', 'model'], where: 'resolveTemplate' });
  }
}
