// Turning a rendered example into input ids and labels. The text is tokenized once, with
// offsets; each token takes the trained/ignored state of the segment its first character is in.
import { UnsupportedError } from '@peft-ts/errors';
import type { Example, RecordSource } from '../io/formats.js';
import { renderExample } from '../template/render.js';
import type { RenderedExample, RenderOptions, Segment } from '../template/render.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { emitWarning } from '../warnings.js';
import type { DataWarning, WarningHandler } from '../warnings.js';

/** The label of a token that carries no loss (PyTorch's cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;

export interface TokenizeOptions extends RenderOptions {
  /** Keep at most this many tokens (the first ones); longer examples are cut and counted. */
  maxLength?: number;
}

/** One example as ids and labels, both `length` long; labels are -100 where no loss is taken. */
export interface TokenizedExample {
  inputIds: Int32Array;
  labels: Int32Array;
  length: number;
  /** Tokens whose label is not -100. */
  trainedTokens: number;
  /** True when maxLength cut the example. */
  truncated: boolean;
  /** Length before truncation. */
  fullLength: number;
  /** Tokens that start in the prompt and run into the response (see tokenizeRendered). */
  boundaryMerges: number;
  /** Token bytes whose place in the text could only be estimated (0 for normal text). */
  unaligned: number;
  source?: RecordSource;
}

function checkMaxLength(maxLength: number | undefined): void {
  if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) {
    throw new UnsupportedError({ what: 'maxLength', got: maxLength, where: 'tokenizeExample: expected a positive integer' });
  }
}

/**
 * Tokenizes a rendered example and labels it from its segments. The rule: a token is trained
 * iff the character its span starts at lies in a trained segment. So a token that straddles a
 * boundary belongs to the segment where it starts: a token merging the prompt's last
 * characters with the response's first ones is not trained (it is counted in
 * `boundaryMerges`; end prompts with a newline or space to avoid it), and a token merging the
 * response's end with the text after it is trained. Tokens the post-processor adds before the
 * text (BOS) are never trained unless trainOn is 'all'; tokens it adds after (EOS) follow the
 * last segment; one EOS is dropped when the text already ends with the appended EOS.
 */
export function tokenizeRendered(rendered: RenderedExample, tokenizer: Tokenizer, options: { maxLength?: number; trainAllSpecials?: boolean } = {}): TokenizedExample {
  checkMaxLength(options.maxLength);
  const encoded = tokenizer.encodeWithOffsets(rendered.text, { addSpecialTokens: rendered.addSpecialTokens });
  let { ids } = encoded;
  let suffixLength = encoded.suffixLength;
  if (rendered.appendedEos && suffixLength > 0) {
    const eosAt = ids.lastIndexOf(tokenizer.eosId ?? -1);
    if (eosAt >= ids.length - suffixLength) {
      ids = ids.filter((_, k) => k !== eosAt);
      suffixLength -= 1;
    }
  }
  const segments: readonly Segment[] = rendered.segments;
  const lastTrained = segments[segments.length - 1]?.trained ?? false;
  const fullLength = ids.length;
  const textEnd = fullLength - suffixLength;
  const labels = new Int32Array(fullLength);
  let trained = 0;
  let boundaryMerges = 0;
  let s = 0;
  for (let k = 0; k < fullLength; k += 1) {
    const id = ids[k] ?? 0;
    let isTrained: boolean;
    if (k < encoded.prefixLength) isTrained = options.trainAllSpecials === true;
    else if (k >= textEnd) isTrained = lastTrained;
    else {
      // Text tokens' starts never decrease, so the segment index only moves forward.
      const start = encoded.starts[k] ?? 0;
      while (s < segments.length - 1 && (segments[s]?.end ?? 0) <= start) s += 1;
      const segment = segments[s];
      isTrained = segment?.trained ?? false;
      const end = encoded.ends[k] ?? start;
      // Neighbouring segments always differ in state, so running past an ignored segment's
      // end means running into a trained one.
      if (segment && !segment.trained && end > segment.end && s + 1 < segments.length) boundaryMerges += 1;
    }
    labels[k] = isTrained ? id : IGNORE_INDEX;
    if (isTrained) trained += 1;
  }
  const length = options.maxLength === undefined ? fullLength : Math.min(fullLength, options.maxLength);
  const inputIds = Int32Array.from(ids.slice(0, length));
  const cut = labels.slice(0, length);
  if (length < fullLength) trained = cut.reduce((n, label) => n + (label === IGNORE_INDEX ? 0 : 1), 0);
  return {
    inputIds,
    labels: cut,
    length,
    trainedTokens: trained,
    truncated: length < fullLength,
    fullLength,
    boundaryMerges,
    unaligned: encoded.unaligned,
  };
}

/** Renders and tokenizes one example (see renderExample and tokenizeRendered for the rules). */
export function tokenizeExample(example: Example, tokenizer: Tokenizer, options: TokenizeOptions = {}): TokenizedExample {
  const rendered = renderExample(example, tokenizer, options);
  const result = tokenizeRendered(rendered, tokenizer, {
    ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}),
    trainAllSpecials: options.trainOn === 'all',
  });
  if (example.source) result.source = example.source;
  return result;
}

/** What tokenizeExamples returns: the examples and warnings summed over all of them. */
export interface TokenizedDataset {
  examples: TokenizedExample[];
  warnings: DataWarning[];
}

function firstAt(list: readonly TokenizedExample[]): string {
  const source = list[0]?.source;
  return source ? ` (first: ${source.file}:${source.line})` : '';
}

/**
 * Tokenizes many examples and reports, once each, what deserves a look: truncated examples,
 * examples left with no trained token, tokens merging across the prompt/response boundary,
 * and text whose offsets had to be estimated.
 */
export function tokenizeExamples(
  examples: Iterable<Example>,
  tokenizer: Tokenizer,
  options: TokenizeOptions & { onWarning?: WarningHandler } = {},
): TokenizedDataset {
  const out: TokenizedExample[] = [];
  for (const example of examples) out.push(tokenizeExample(example, tokenizer, options));
  const warnings: DataWarning[] = [];
  const report = (code: DataWarning['code'], hits: TokenizedExample[], what: string) => {
    if (hits.length > 0) emitWarning(warnings, { code, message: `${hits.length} of ${out.length} examples ${what}${firstAt(hits)}` }, options.onWarning);
  };
  report('truncated', out.filter((e) => e.truncated), `were truncated to maxLength ${options.maxLength ?? ''}`);
  report('no-trained-tokens', out.filter((e) => e.trainedTokens === 0), 'have no trained token left (nothing to learn from them)');
  report(
    'boundary-merge',
    out.filter((e) => e.boundaryMerges > 0),
    'have a token spanning the end of the prompt and the start of the response; it is not trained, so the response loses its first characters (end the prompt with a newline or space)',
  );
  report('offsets-approximate', out.filter((e) => e.unaligned > 0), 'had text the tokenizer normalised, so some token offsets are estimates');
  return { examples: out, warnings };
}
