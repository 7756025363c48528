// A readable view of which tokens carry loss, for checking a template and its masks by eye.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { IGNORE_INDEX } from './tokenize-example.js';
import type { TokenizedExample } from './tokenize-example.js';

export interface PreviewOptions {
  /** Colour trained tokens green and ignored ones dim with ANSI codes instead of brackets. */
  color?: boolean;
  /** Markers around trained text (default '[[' and ']]'); unused with color. */
  open?: string;
  close?: string;
  /** Put this between tokens to show token boundaries (default: none). */
  separator?: string;
}

const GREEN = '\u001b[32m';
const DIM = '\u001b[2m';
const RESET = '\u001b[0m';

/**
 * The example's text, token by token, with ignored tokens as plain text and trained tokens
 * inside [[...]] (or coloured). Special tokens show as their text (`<s>`, `<|im_end|>`).
 * Each run of same-state tokens is decoded from its bytes, so characters split across byte
 * tokens read correctly unless the split falls on a trained/ignored boundary.
 */
export function previewMasks(example: TokenizedExample, tokenizer: Tokenizer, options: PreviewOptions = {}): string {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const open = options.color ? GREEN : (options.open ?? '[[');
  const close = options.color ? RESET : (options.close ?? ']]');
  const separator = options.separator ?? '';
  const parts: string[] = [];
  let k = 0;
  while (k < example.length) {
    const trained = example.labels[k] !== IGNORE_INDEX;
    const tokens: string[] = [];
    let bytes: number[] = [];
    while (k < example.length && (example.labels[k] !== IGNORE_INDEX) === trained) {
      const piece = tokenizer.tokenBytes(example.inputIds[k] ?? 0);
      if (separator === '') bytes.push(...piece);
      else tokens.push(decoder.decode(piece));
      k += 1;
    }
    const text = separator === '' ? decoder.decode(Uint8Array.from(bytes)) : tokens.join(separator);
    bytes = [];
    if (trained) parts.push(`${open}${text}${close}`);
    else parts.push(options.color ? `${DIM}${text}${RESET}` : text);
  }
  return parts.join(separator);
}
