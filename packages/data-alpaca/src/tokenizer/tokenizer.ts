// A model's tokenizer as data preparation needs it: ids from tokenizer.json through
// @huggingface/tokenizers, the special tokens and flags from tokenizer_config.json, character
// offsets for masking, and the model's chat template rendered with @huggingface/jinja.
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { readSourceText } from '../io/byte-source.js';
import type { FileTree } from '../io/byte-source.js';
import { alignTokens } from './align.js';
import { tokenBytesFunction } from './token-bytes.js';
import { emitWarning } from '../warnings.js';
import type { DataWarning, WarningHandler } from '../warnings.js';

export interface TokenizerOptions {
  /** Use this token for padding instead of tokenizer_config's `pad_token`. */
  padToken?: string;
  /** Use this Jinja source instead of the model's `chat_template`. */
  chatTemplate?: string;
  onWarning?: WarningHandler;
}

/** Ids of a text plus each token's character span. */
export interface EncodedText {
  ids: number[];
  /** UTF-16 index of each token's first character; see `alignTokens` for the rules. */
  starts: Int32Array;
  /** UTF-16 index just past each token's last character. */
  ends: Int32Array;
  /** How many leading ids post-processing added (BOS); they have empty spans at 0. */
  prefixLength: number;
  /** How many trailing ids post-processing added (EOS); they have empty spans at the end. */
  suffixLength: number;
  /** Token bytes that matched no text byte: 0 unless a normalizer rewrote characters. */
  unaligned: number;
}

/** A chat turn as a chat template receives it. */
export interface TemplateMessage {
  role: string;
  content: string;
}

type Json = Record<string, unknown>;

// The part of @huggingface/tokenizers' Tokenizer used here. Its published .d.ts files import
// each other without extensions, which NodeNext resolution cannot follow (so its types
// arrive as `any`); this interface restores checking at the boundary.
interface HfTokenizerApi {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[]; tokens: string[] };
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_added_tokens_decoder(): Map<number, { content: string; special: boolean }>;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}
const HfTokenizerClass = HfTokenizer as unknown as new (tokenizerJson: object, config: object) => HfTokenizerApi;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// tokenizer_config.json writes special tokens as strings or as AddedToken objects.
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

function chatTemplateSource(value: unknown): string | null {
  if (typeof value === 'string') return value;
  // Older configs hold a list of named templates; 'default' is the one transformers uses.
  if (Array.isArray(value)) {
    const named = value.filter(isObject);
    const chosen = named.find((t) => t.name === 'default') ?? named[0];
    return chosen && typeof chosen.template === 'string' ? chosen.template : null;
  }
  return null;
}

function parseJsonObject(text: string, file: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file, field: '(file)', expected: 'valid JSON', got: cause instanceof Error ? cause.message : String(cause), cause });
  }
  if (!isObject(value)) throw new FormatError({ file, field: '(file)', expected: 'a JSON object', got: value });
  return value;
}

/** A file's text from a tree, or null when the tree has no such file. */
async function readTreeText(tree: FileTree, name: string): Promise<{ text: string; file: string } | null> {
  const source = await tree.open(name);
  if (source === null) return null;
  try {
    return { text: await readSourceText(source), file: source.name };
  } finally {
    await source.close?.();
  }
}

/** tokenizer.json / tokenizer_config.json content: parsed already, or its text. */
function jsonContent(value: unknown, file: string): Json {
  if (typeof value === 'string') return parseJsonObject(value, file);
  if (!isObject(value)) throw new FormatError({ file, field: '(file)', expected: 'a JSON object', got: value });
  return value;
}

/** A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json). */
export class Tokenizer {
  readonly bosToken: string | null;
  readonly bosId: number | null;
  readonly eosToken: string | null;
  readonly eosId: number | null;
  readonly unkToken: string | null;
  /** The padding token: `pad_token` from the config, else the EOS token (with a warning). */
  readonly padToken: string;
  readonly padId: number;
  /** The Jinja chat template, or null when the model has none. */
  readonly chatTemplate: string | null;
  /** Ids that encoding with special tokens puts before / after the text. */
  readonly prefixIds: readonly number[];
  readonly suffixIds: readonly number[];
  /** Warnings raised while loading (e.g. pad-is-eos). */
  readonly warnings: DataWarning[] = [];

  readonly #hf: HfTokenizerApi;
  readonly #config: Json;
  readonly #added = new Map<number, { content: string; special: boolean }>();
  readonly #bytesOf: (token: string) => Uint8Array;
  readonly #bytesCache = new Map<number, Uint8Array>();
  #compiled: Template | null = null;
  #vocabSize: number | undefined;
  #addedTexts: string[] | undefined;

  private constructor(tokenizerJson: Json, config: Json, options: TokenizerOptions, names: { json: string; config: string }) {
    if (!isObject(tokenizerJson.model)) {
      throw new FormatError({ file: names.json, field: 'model', expected: 'a tokenizer model object', got: tokenizerJson.model });
    }
    // The library validates both objects and reads optional parts as null, not absent.
    const completed = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...tokenizerJson };
    try {
      this.#hf = new HfTokenizerClass(completed, config);
    } catch (cause) {
      throw new FormatError({ file: names.json, field: '(file)', expected: 'a tokenizer.json that @huggingface/tokenizers accepts', got: cause instanceof Error ? cause.message : String(cause), cause });
    }
    this.#config = config;
    for (const [id, token] of this.#hf.get_added_tokens_decoder()) this.#added.set(id, { content: token.content, special: token.special });
    this.#bytesOf = tokenBytesFunction(tokenizerJson);

    const lookup = (field: string): { token: string | null; id: number | null } => {
      const token = tokenContent(config[field]);
      if (token === null) return { token: null, id: null };
      const id = this.#hf.token_to_id(token);
      if (id === undefined) {
        throw new FormatError({ file: names.config, field, expected: "a token in tokenizer.json's vocabulary", got: token });
      }
      return { token, id };
    };
    const bos = lookup('bos_token');
    const eos = lookup('eos_token');
    this.bosToken = bos.token;
    this.bosId = bos.id;
    this.eosToken = eos.token;
    this.eosId = eos.id;
    this.unkToken = tokenContent(config.unk_token);

    const padToken = options.padToken ?? tokenContent(config.pad_token) ?? eos.token;
    if (padToken === null) {
      throw new FormatError({ file: names.config, field: 'pad_token', expected: 'a pad_token or an eos_token to pad with', got: 'neither' });
    }
    const padId = this.#hf.token_to_id(padToken);
    if (padId === undefined) {
      throw new FormatError({ file: names.config, field: 'pad_token', expected: "a token in tokenizer.json's vocabulary", got: padToken });
    }
    this.padToken = padToken;
    this.padId = padId;
    if (padId === this.eosId) {
      emitWarning(
        this.warnings,
        {
          code: 'pad-is-eos',
          message:
            `pad token ${JSON.stringify(padToken)} is the EOS token (id ${padId}): this package labels padding by position, so the ` +
            'EOS after each response stays in the labels, but a collator that sets labels to -100 wherever input_ids == pad_id ' +
            'would mask every EOS out and the model would not learn to stop; give the tokenizer a distinct pad token to be safe',
        },
        options.onWarning,
      );
    }

    this.chatTemplate = options.chatTemplate ?? chatTemplateSource(config.chat_template);
    const affixes = this.#probeAffixes(names);
    this.prefixIds = affixes.prefix;
    this.suffixIds = affixes.suffix;
  }

  // What encoding with special tokens adds around a text, learned from the post-processor by
  // encoding a probe, then adjusted by the config's add_bos_token / add_eos_token flags as
  // transformers does for tokenizers that have them.
  #probeAffixes(names: { json: string; config: string }): { prefix: number[]; suffix: number[] } {
    const plain = this.#hf.encode('a', { add_special_tokens: false }).ids;
    const full = this.#hf.encode('a', { add_special_tokens: true }).ids;
    let at = -1;
    for (let p = 0; p + plain.length <= full.length && at < 0; p += 1) {
      if (plain.every((id, q) => full[p + q] === id)) at = p;
    }
    if (at < 0) {
      throw new UnsupportedError({ what: 'post-processor that rewrites the text tokens', got: names.json, where: 'Tokenizer' });
    }
    const prefix = full.slice(0, at);
    const suffix = full.slice(at + plain.length);
    const { add_bos_token: addBos, add_eos_token: addEos } = this.#config;
    if (this.bosId !== null) {
      if (addBos === true && !prefix.includes(this.bosId)) prefix.unshift(this.bosId);
      if (addBos === false && prefix[0] === this.bosId) prefix.shift();
    }
    if (this.eosId !== null) {
      if (addEos === true && !suffix.includes(this.eosId)) suffix.push(this.eosId);
      if (addEos === false && suffix[suffix.length - 1] === this.eosId) suffix.pop();
    }
    return { prefix, suffix };
  }

  /**
   * Loads `tokenizer.json` and `tokenizer_config.json` from a model directory, however stored
   * (a FileTree: a Node directory, a browser folder pick, memory); fields the config lacks are
   * taken from `special_tokens_map.json`, and the chat template from `chat_template.jinja` when
   * the config has none (newer transformers save it there). `@peft-ts/data-alpaca/node`'s
   * `tokenizerFromDir(dir)` reads a directory through this.
   */
  static async fromTree(tree: FileTree, options: TokenizerOptions = {}): Promise<Tokenizer> {
    const tokenizerFile = await readTreeText(tree, 'tokenizer.json');
    const configFile = await readTreeText(tree, 'tokenizer_config.json');
    const jsonName = tokenizerFile?.file ?? `${tree.name}/tokenizer.json`;
    if (tokenizerFile === null) {
      throw new FormatError({ file: jsonName, field: '(file)', expected: 'a tokenizer.json in the model directory', got: 'no such file' });
    }
    const tokenizerJson = parseJsonObject(tokenizerFile.text, jsonName);
    const configName = configFile?.file ?? `${tree.name}/tokenizer_config.json`;
    const config = configFile === null ? {} : parseJsonObject(configFile.text, configName);
    const specialFile = await readTreeText(tree, 'special_tokens_map.json');
    if (specialFile) {
      const specialMap = parseJsonObject(specialFile.text, specialFile.file);
      for (const [key, value] of Object.entries(specialMap)) if (config[key] === undefined) config[key] = value;
    }
    if (config.chat_template === undefined) {
      const jinja = await readTreeText(tree, 'chat_template.jinja');
      if (jinja !== null) config.chat_template = jinja.text;
    }
    return new Tokenizer(tokenizerJson, config, options, { json: jsonName, config: configName });
  }

  /**
   * Builds from tokenizer.json and tokenizer_config.json contents: parsed objects, or their
   * text. `names` label them in messages (default the file names).
   */
  static fromJSON(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    options: TokenizerOptions = {},
    names: { json?: string; config?: string } = {},
  ): Tokenizer {
    const json = names.json ?? 'tokenizer.json';
    const config = names.config ?? 'tokenizer_config.json';
    return new Tokenizer(jsonContent(tokenizerJson, json), { ...jsonContent(tokenizerConfig, config) }, options, { json, config });
  }

  /** Number of ids, added tokens included. */
  get vocabSize(): number {
    this.#vocabSize ??= this.#hf.get_vocab(true).size;
    return this.#vocabSize;
  }

  /** Token ids; with special tokens (default) the post-processor's BOS/EOS are added. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = this.#hf.encode(text, { add_special_tokens: false }).ids;
    return options.addSpecialTokens === false ? ids : [...this.prefixIds, ...ids, ...this.suffixIds];
  }

  /** Ids plus each token's character span in `text`, from one pass of the tokenizer. */
  encodeWithOffsets(text: string, options: { addSpecialTokens?: boolean } = {}): EncodedText {
    const encoded = this.#hf.encode(text, { add_special_tokens: false });
    const pieces = encoded.ids.map((id, k) => {
      const added = this.#added.get(id);
      return added ? this.#bytesOfId(id) : this.#bytesOf(encoded.tokens[k] ?? '');
    });
    const aligned = alignTokens(text, pieces);
    if (options.addSpecialTokens === false) {
      return { ids: encoded.ids, starts: aligned.starts, ends: aligned.ends, prefixLength: 0, suffixLength: 0, unaligned: aligned.unaligned };
    }
    const pre = this.prefixIds.length;
    const post = this.suffixIds.length;
    const n = pre + encoded.ids.length + post;
    const starts = n === encoded.ids.length ? aligned.starts : new Int32Array(n);
    const ends = n === encoded.ids.length ? aligned.ends : new Int32Array(n);
    if (starts !== aligned.starts) {
      starts.set(aligned.starts, pre);
      ends.set(aligned.ends, pre);
      starts.fill(text.length, pre + encoded.ids.length);
      ends.fill(text.length, pre + encoded.ids.length);
    }
    return {
      ids: [...this.prefixIds, ...encoded.ids, ...this.suffixIds],
      starts,
      ends,
      prefixLength: pre,
      suffixLength: post,
      unaligned: aligned.unaligned,
    };
  }

  /** Text of ids; `skipSpecialTokens` drops special tokens such as BOS/EOS. */
  decode(ids: readonly number[] | Int32Array, options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.#hf.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  /** True for added tokens marked special (BOS, EOS, `<|im_start|>`...). */
  isSpecial(id: number): boolean {
    return this.#added.get(id)?.special ?? false;
  }

  /** The contents of every added token (special or not), longest first. */
  addedTokenTexts(): readonly string[] {
    this.#addedTexts ??= [...this.#added.values()].map((t) => t.content).sort((a, b) => b.length - a.length);
    return this.#addedTexts;
  }

  /** The bytes of text one token stands for (its content for added tokens). */
  tokenBytes(id: number): Uint8Array {
    return this.#bytesOfId(id);
  }

  #bytesOfId(id: number): Uint8Array {
    let bytes = this.#bytesCache.get(id);
    if (bytes === undefined) {
      const added = this.#added.get(id);
      bytes = added ? new TextEncoder().encode(added.content) : this.#bytesOf(this.#hf.id_to_token(id) ?? '');
      this.#bytesCache.set(id, bytes);
    }
    return bytes;
  }

  /**
   * Renders the chat template as transformers' `apply_chat_template(tokenize=False)` does:
   * `messages`, `add_generation_prompt` and the special tokens (`bos_token`, `eos_token`,
   * `unk_token`, `pad_token`) as variables, plus any extra `variables` (e.g. enable_thinking).
   */
  applyChatTemplate(
    messages: readonly TemplateMessage[],
    options: { addGenerationPrompt?: boolean; variables?: Readonly<Record<string, unknown>> } = {},
  ): string {
    if (this.chatTemplate === null) {
      throw new UnsupportedError({ what: 'chat template', got: 'none', where: 'Tokenizer.applyChatTemplate: tokenizer_config.json has no chat_template' });
    }
    this.#compiled ??= new Template(this.chatTemplate);
    const special: Record<string, string> = {};
    for (const field of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const token = tokenContent(this.#config[field]);
      if (token !== null) special[field] = token;
    }
    return this.#compiled.render({
      ...special,
      ...options.variables,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  }
}
