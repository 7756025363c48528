// Text in, text out: a prompt rendered with the training template, generated with the model,
// decoded incrementally so tokens can be streamed as they arrive.
import { PeftError } from '@peft-ts/errors';
import { ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT, type Tokenizer } from '@peft-ts/data-alpaca';
import { generate, type CausalLM, type GenerateOptions } from '@peft-ts/models';

export type PromptTemplate = 'alpaca' | 'chat' | 'model' | 'raw';

/** The prompt the model saw in training for an instruction (and optional input), up to where the response starts. */
export function promptText(tokenizer: Tokenizer, template: PromptTemplate, instruction: string, input = ''): string {
  switch (template) {
    case 'alpaca':
      return input ? ALPACA_PROMPT_INPUT.replace('{instruction}', instruction).replace('{input}', input) : ALPACA_PROMPT_NO_INPUT.replace('{instruction}', instruction);
    case 'chat':
      return `<|user|>\n${input ? `${instruction}\n\n${input}` : instruction}\n<|assistant|>\n`;
    case 'model':
      return tokenizer.applyChatTemplate([{ role: 'user', content: input ? `${instruction}\n\n${input}` : instruction }], { addGenerationPrompt: true });
    case 'raw':
      return input ? `${instruction}\n${input}` : instruction;
  }
}

/**
 * Prompt text as ids, tokenized the way training tokenizes an example's prompt part: the
 * post-processor's prefix (BOS) once and no suffix (EOS), or no special tokens at all when
 * the text comes from the model's own chat template, which writes its own.
 */
export function encodePrompt(tokenizer: Tokenizer, text: string, options: { addPrefix?: boolean } = {}): number[] {
  return [...(options.addPrefix === false ? [] : tokenizer.prefixIds), ...tokenizer.encode(text, { addSpecialTokens: false })];
}

/** The ids of the prompt for an instruction (and optional input), as training saw them. */
export function promptIds(tokenizer: Tokenizer, template: PromptTemplate, instruction: string, input = ''): number[] {
  return encodePrompt(tokenizer, promptText(tokenizer, template, instruction, input), { addPrefix: template !== 'model' });
}

export interface TextGenerateOptions extends Omit<GenerateOptions, 'decode' | 'onToken'> {
  /** Called with each new piece of text as it is decoded. */
  onText?: (text: string) => void;
}

/**
 * Generates a continuation of `prompt` and returns it as text (special tokens dropped). A text
 * prompt is encoded with encodePrompt (one prefix, no suffix); pass ids (promptIds) for a
 * prompt from the model's chat template.
 */
export async function generateText(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompt: string | readonly number[],
  options: TextGenerateOptions = {},
): Promise<{ text: string; tokens: number[]; promptIds: number[]; finishReason: string }> {
  const ids = typeof prompt === 'string' ? encodePrompt(tokenizer, prompt) : [...prompt];
  if (ids.length === 0) throw new PeftError('BAD_PROMPT', 'generate: the prompt is empty');
  let shown = '';
  const tokens: number[] = [];
  const decode = (t: readonly number[]) => tokenizer.decode(t, { skipSpecialTokens: true });
  const eos = options.eosTokenIds ?? [...new Set([...model.config.eosTokenIds, ...(tokenizer.eosId !== null ? [tokenizer.eosId] : [])])];
  const r = await generate(model, [ids], {
    ...options,
    eosTokenIds: eos,
    decode,
    onToken: ({ token }) => {
      tokens.push(token);
      if (!options.onText) return;
      const text = decode(tokens);
      // Hold back text that ends in an incomplete UTF-8 sequence until the next token completes it.
      if (text.startsWith(shown) && !text.endsWith('\uFFFD')) {
        options.onText(text.slice(shown.length));
        shown = text;
      }
    },
  });
  const text = decode(r.tokens[0] ?? []);
  if (options.onText && text.length > shown.length && text.startsWith(shown)) options.onText(text.slice(shown.length));
  return { text, tokens: r.tokens[0] ?? [], promptIds: ids, finishReason: r.finishReasons[0] ?? 'length' };
}
