// A deterministic byte-level BPE trainer (GPT-2 style) that writes Hugging Face `tokenizers`
// files, so the demo can ship a tokenizer made from its own dataset instead of downloading one.
import { PeftError } from '@peft-ts/errors';

/**
 * GPT-2's pre-tokenizer split: contractions, letter runs, digit runs and punctuation runs (each
 * with at most one leading space), then whitespace. The same pattern the ByteLevel
 * pre-tokenizer of `tokenizers` (Rust and JS) uses with `use_regex: true`.
 */
export const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's bytes_to_unicode table, indexed by byte: printable Latin-1 bytes stand for
 * themselves and the other 68 move, in byte order, to code points 256 and up, so every byte
 * becomes one printable character and a token's vocabulary string never holds a space.
 */
export function byteLevelAlphabet(): string[] {
  const table: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte += 1) {
    const printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    table.push(String.fromCharCode(printable ? byte : 256 + shifted++));
  }
  return table;
}

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface ByteLevelJson {
  type: 'ByteLevel';
  add_prefix_space: boolean;
  trim_offsets: boolean;
  use_regex: boolean;
}

/** The subset of tokenizer.json that a byte-level BPE tokenizer uses. */
export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: ByteLevelJson;
  post_processor: ByteLevelJson;
  decoder: ByteLevelJson;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    /** "left right", in the order they were learned (rank 0 first). */
    merges: string[];
  };
}

export interface BpeTrainOptions {
  /** Total ids: special tokens + 256 byte symbols + learned merges. */
  vocabSize: number;
  /** Added at ids 0, 1, ... in this order; their text is never split or learned from. */
  specialTokens?: readonly string[];
  /** Stop learning when the most frequent pair occurs fewer times than this (default 2). */
  minFrequency?: number;
}

interface Word {
  symbols: string[];
  count: number;
}

interface PairStat {
  left: string;
  right: string;
  count: number;
  /** Indices of words that held this pair when it was counted (may include stale ones). */
  words: Set<number>;
}

// Splits text at every occurrence of a special token (longest first), as encoding does, so a
// special token's text never leaks into the merges.
function splitOnSpecials(text: string, specials: readonly string[]): string[] {
  if (specials.length === 0) return [text];
  const ordered = [...specials].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  const pieces: string[] = [];
  let start = 0;
  let at = 0;
  while (at < text.length) {
    const hit = ordered.find((s) => text.startsWith(s, at));
    if (hit === undefined) {
      at += 1;
      continue;
    }
    if (at > start) pieces.push(text.slice(start, at));
    at += hit.length;
    start = at;
  }
  if (start < text.length) pieces.push(text.slice(start));
  return pieces;
}

/** The pre-tokenized words of `text`, each as its byte-level symbol string. */
export function byteLevelWords(text: string, alphabet: readonly string[] = byteLevelAlphabet()): string[] {
  const encoder = new TextEncoder();
  const words: string[] = [];
  for (const match of text.matchAll(BYTE_LEVEL_SPLIT)) {
    let word = '';
    for (const byte of encoder.encode(match[0])) word += alphabet[byte] ?? '';
    words.push(word);
  }
  return words;
}

// Code-unit order: the same on every engine and locale, unlike localeCompare.
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Learns byte-level BPE merges from `texts`: the most frequent adjacent pair first, ties broken
 * by the pair's (left, right) strings in code-unit order, so the result depends only on the
 * texts and options. Returns the tokenizer.json object: special tokens at ids 0.., the 256 byte
 * symbols in byte order next, then each merge's token in the order learned.
 */
export function trainByteLevelBpe(texts: readonly string[], options: BpeTrainOptions): TokenizerJson {
  const specials = options.specialTokens ?? [];
  const minFrequency = options.minFrequency ?? 2;
  const floor = specials.length + 256;
  if (!Number.isSafeInteger(options.vocabSize) || options.vocabSize < floor) {
    throw new PeftError('BAD_OPTION', `trainByteLevelBpe: vocabSize must be an integer >= ${floor} (${specials.length} special tokens + 256 bytes), got ${options.vocabSize}`);
  }
  if (new Set(specials).size !== specials.length || specials.some((s) => s.length === 0)) {
    throw new PeftError('BAD_OPTION', `trainByteLevelBpe: special tokens must be distinct non-empty strings, got ${JSON.stringify(specials)}`);
  }

  const alphabet = byteLevelAlphabet();
  const vocab = new Map<string, number>();
  for (const token of [...specials, ...alphabet]) {
    if (vocab.has(token)) throw new PeftError('BAD_OPTION', `trainByteLevelBpe: special token ${JSON.stringify(token)} is also a byte symbol`);
    vocab.set(token, vocab.size);
  }

  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const piece of splitOnSpecials(text, specials)) {
      for (const word of byteLevelWords(piece, alphabet)) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  const words: Word[] = [...counts.keys()].sort(compareStrings).map((w) => ({ symbols: Array.from(w), count: counts.get(w) ?? 0 }));

  const pairs = new Map<string, PairStat>();
  const addPairs = (index: number, sign: 1 | -1) => {
    const word = words[index];
    if (!word) return;
    for (let i = 0; i + 1 < word.symbols.length; i += 1) {
      const left = word.symbols[i] ?? '';
      const right = word.symbols[i + 1] ?? '';
      const key = `${left} ${right}`;
      let stat = pairs.get(key);
      if (!stat) {
        stat = { left, right, count: 0, words: new Set() };
        pairs.set(key, stat);
      }
      stat.count += sign * word.count;
      if (sign > 0) stat.words.add(index);
    }
  };
  for (let i = 0; i < words.length; i += 1) addPairs(i, 1);

  const merges: string[] = [];
  while (vocab.size < options.vocabSize) {
    let best: PairStat | undefined;
    for (const stat of pairs.values()) {
      if (stat.count <= 0) continue;
      if (
        !best ||
        stat.count > best.count ||
        (stat.count === best.count && (compareStrings(stat.left, best.left) || compareStrings(stat.right, best.right)) < 0)
      ) {
        best = stat;
      }
    }
    if (!best || best.count < minFrequency) break;
    const { left, right } = best;
    const merged = left + right;
    merges.push(`${left} ${right}`);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    // Sorted so the per-word updates run in one fixed order (the counts do not depend on it,
    // but nothing here should depend on Set insertion history either).
    for (const index of [...best.words].sort((a, b) => a - b)) {
      const word = words[index];
      if (!word) continue;
      addPairs(index, -1);
      const next: string[] = [];
      for (let i = 0; i < word.symbols.length; i += 1) {
        if (word.symbols[i] === left && word.symbols[i + 1] === right) {
          next.push(merged);
          i += 1;
        } else {
          next.push(word.symbols[i] ?? '');
        }
      }
      word.symbols = next;
      addPairs(index, 1);
    }
    pairs.delete(`${left} ${right}`);
  }

  const byteLevel = (trimOffsets: boolean): ByteLevelJson => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel(true),
    // A ByteLevel post-processor only trims offsets: encoding adds no BOS/EOS.
    post_processor: byteLevel(false),
    decoder: byteLevel(true),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}

/** Number of ids in a trained tokenizer (model vocabulary plus added tokens). */
export function tokenizerVocabSize(tokenizer: TokenizerJson): number {
  const ids = new Set(Object.values(tokenizer.model.vocab));
  for (const t of tokenizer.added_tokens) ids.add(t.id);
  return ids.size;
}

/**
 * tokenizer.json text with the vocabulary listed in id order, as `tokenizers` writes it (a
 * plain JSON.stringify would hoist integer-like keys such as "10" to the front).
 */
export function stringifyTokenizerJson(tokenizer: TokenizerJson): string {
  const sentinel = '\u0000vocab\u0000';
  const entries = Object.entries(tokenizer.model.vocab).sort((a, b) => a[1] - b[1]);
  const vocabText = entries.length === 0 ? '{}' : `{\n${entries.map(([token, id]) => `      ${JSON.stringify(token)}: ${id}`).join(',\n')}\n    }`;
  const shell = { ...tokenizer, model: { ...tokenizer.model, vocab: sentinel } };
  return `${JSON.stringify(shell, null, 2).replace(JSON.stringify(sentinel), () => vocabText)}\n`;
}

export interface TokenizerFileOptions {
  bosToken: string;
  eosToken: string;
  padToken: string;
  /** tokenizer_config's model_max_length: the longest sequence the model is meant for. */
  modelMaxLength: number;
}

/**
 * The three tokenizer files of a model directory, as text: tokenizer.json,
 * tokenizer_config.json (a PreTrainedTokenizerFast that adds no BOS/EOS and does not rewrite
 * spaces on decode, so decoding gives back the exact text) and special_tokens_map.json.
 */
export function tokenizerFiles(tokenizer: TokenizerJson, options: TokenizerFileOptions): Record<string, string> {
  const added = new Map(tokenizer.added_tokens.map((t) => [t.content, t]));
  for (const [field, token] of [
    ['bosToken', options.bosToken],
    ['eosToken', options.eosToken],
    ['padToken', options.padToken],
  ] as const) {
    if (!added.has(token)) {
      throw new PeftError('BAD_OPTION', `tokenizerFiles: ${field} ${JSON.stringify(token)} is not one of the tokenizer's added tokens (${[...added.keys()].join(', ')})`);
    }
  }
  const addedTokensDecoder = Object.fromEntries(
    tokenizer.added_tokens.map((t) => [String(t.id), { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: t.special }]),
  );
  const config = {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: options.bosToken,
    clean_up_tokenization_spaces: false,
    eos_token: options.eosToken,
    model_max_length: options.modelMaxLength,
    pad_token: options.padToken,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const specialMap = { bos_token: options.bosToken, eos_token: options.eosToken, pad_token: options.padToken };
  return {
    'tokenizer.json': stringifyTokenizerJson(tokenizer),
    'tokenizer_config.json': `${JSON.stringify(config, null, 2)}\n`,
    'special_tokens_map.json': `${JSON.stringify(specialMap, null, 2)}\n`,
  };
}
