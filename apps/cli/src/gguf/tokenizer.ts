// tokenizer.json + tokenizer_config.json -> llama.cpp's tokenizer.ggml.* metadata. Two kinds
// are representable: sentencepiece-style BPE with byte fallback ("llama") and byte-level BPE
// ("gpt2") with a pre-tokenizer llama.cpp knows by name. Anything else is refused, so a file
// never tokenizes differently from the checkpoint it came from.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { gguf, type GgufMetadata } from '@peft-ts/gguf';

type Json = Record<string, unknown>;

/** llama.cpp's token types. */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** Split regexes of byte-level BPE tokenizers, by the pre-tokenizer name llama.cpp uses for each. */
const KNOWN_SPLITS: Record<string, string> = {
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

export interface TokenizerSummary {
  model: 'llama' | 'gpt2';
  pre: string | null;
  tokens: number;
  warnings: string[];
}

const obj = (v: unknown): Json | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null);
const tokenText = (v: unknown): string | null => (typeof v === 'string' ? v : typeof obj(v)?.content === 'string' ? (obj(v)?.content as string) : null);

/** True when the normalizer is exactly "prepend ▁, replace ' ' with ▁" (or just the replace). */
function spmNormalizer(n: Json | null, file: string): { prefix: boolean } {
  if (n === null) return { prefix: false };
  const steps = n.type === 'Sequence' && Array.isArray(n.normalizers) ? (n.normalizers as unknown[]).map(obj) : [n];
  let prefix = false;
  let replace = false;
  for (const s of steps) {
    if (s?.type === 'Prepend' && s.prepend === '\u2581') prefix = true;
    else if (s?.type === 'Replace' && obj(s.pattern)?.String === ' ' && s.content === '\u2581') replace = true;
    else throw new UnsupportedError({ what: 'sentencepiece normalizer step (llama.cpp applies none but the space prefix)', got: s?.type ?? s, where: `${file}: normalizer` });
  }
  if (!replace) throw new FormatError({ file, field: 'normalizer', expected: "a Replace of ' ' with '\u2581' (sentencepiece-style BPE)", got: JSON.stringify(n).slice(0, 120) });
  return { prefix };
}

function byteLevelPre(pre: Json | null, file: string): string {
  const steps = pre?.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? (pre.pretokenizers as unknown[]).map(obj) : [pre];
  const split = steps.find((s) => s?.type === 'Split');
  const byteLevel = steps.find((s) => s?.type === 'ByteLevel');
  if (!byteLevel) throw new FormatError({ file, field: 'pre_tokenizer', expected: 'a ByteLevel pre-tokenizer (byte-level BPE)', got: JSON.stringify(pre).slice(0, 120) });
  if (byteLevel.add_prefix_space === true) throw new UnsupportedError({ what: 'ByteLevel add_prefix_space', got: true, where: `${file}: pre_tokenizer` });
  if (split) {
    const regex = obj(split.pattern)?.Regex;
    const name = Object.entries(KNOWN_SPLITS).find(([, r]) => r === regex)?.[0];
    if (!name || split.behavior !== 'Isolated' || split.invert === true || byteLevel.use_regex === true || steps.length !== 2) {
      throw new UnsupportedError({ what: 'pre-tokenizer split (llama.cpp knows it by name only for known regexes)', got: typeof regex === 'string' ? regex.slice(0, 80) : split, where: `${file}: pre_tokenizer` });
    }
    return name;
  }
  if (steps.length === 1 && byteLevel.use_regex !== false) return 'gpt-2';
  throw new UnsupportedError({ what: 'pre-tokenizer', got: JSON.stringify(pre).slice(0, 120), where: `${file}: pre_tokenizer` });
}

/**
 * Adds the tokenizer.ggml.* keys and tokenizer.chat_template for the model directory `dir`,
 * padding the vocabulary to `vocabSize` (the embedding rows) with unused tokens.
 */
export async function tokenizerMetadata(dir: string, vocabSize: number, ids: { bos: number | null; eos: number[]; pad: number | null }, md: GgufMetadata): Promise<TokenizerSummary> {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) throw new FormatError({ file, field: '(file)', expected: 'tokenizer.json beside config.json (the GGUF file carries the tokenizer)', got: 'no such file' });
  const tj = JSON.parse(await readFile(file, 'utf8')) as Json;
  const configFile = join(dir, 'tokenizer_config.json');
  const tc = existsSync(configFile) ? (JSON.parse(await readFile(configFile, 'utf8')) as Json) : {};
  const model = obj(tj.model);
  if (model?.type !== 'BPE') throw new UnsupportedError({ what: 'tokenizer model', got: model?.type ?? null, supported: ['BPE'], where: `${file}: model.type` });
  const vocab = obj(model.vocab);
  if (!vocab) throw new FormatError({ file, field: 'model.vocab', expected: 'an object of token -> id', got: typeof model.vocab });
  if (model.dropout !== null && model.dropout !== undefined) throw new UnsupportedError({ what: 'BPE dropout', got: model.dropout, where: `${file}: model.dropout` });
  const warnings: string[] = [];

  const tokens: (string | undefined)[] = new Array<string | undefined>(vocabSize);
  const types = new Array<number>(vocabSize).fill(TOKEN_TYPE.normal);
  for (const [tok, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || id < 0 || id >= vocabSize) throw new FormatError({ file, field: `model.vocab[${JSON.stringify(tok)}]`, expected: `an id below the model's vocab_size ${vocabSize}`, got: id });
    tokens[id] = tok;
  }
  const addedTokens = Array.isArray(tj.added_tokens) ? (tj.added_tokens as unknown[]).map(obj) : [];
  for (const a of addedTokens) {
    if (!a || typeof a.id !== 'number' || typeof a.content !== 'string') continue;
    if (a.id >= vocabSize) throw new FormatError({ file, field: `added_tokens[${JSON.stringify(a.content)}]`, expected: `an id below the model's vocab_size ${vocabSize}`, got: a.id });
    tokens[a.id] = a.content;
    types[a.id] = a.special === true ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  for (let i = 0; i < vocabSize; i += 1) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.unused;
    }
  }
  const merges = (Array.isArray(model.merges) ? (model.merges as unknown[]) : []).map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    throw new FormatError({ file, field: `model.merges[${i}]`, expected: 'a "left right" string or a [left, right] pair', got: m });
  });

  let kind: 'llama' | 'gpt2';
  let pre: string | null = null;
  if (model.byte_fallback === true) {
    kind = 'llama';
    const { prefix } = spmNormalizer(obj(tj.normalizer), file);
    if (tj.pre_tokenizer !== null && tj.pre_tokenizer !== undefined) throw new UnsupportedError({ what: 'pre-tokenizer on a sentencepiece-style tokenizer', got: obj(tj.pre_tokenizer)?.type ?? tj.pre_tokenizer, where: `${file}: pre_tokenizer` });
    // llama.cpp's sentencepiece tokenizer merges the adjacent pair whose result scores highest;
    // scoring each token by minus the rank of the first merge that makes it gives HF's order.
    const scores = new Array<number>(vocabSize).fill(0);
    const rank = new Map<string, number>();
    merges.forEach((m, r) => {
      const merged = m.replace(' ', '');
      if (!rank.has(merged)) rank.set(merged, r);
    });
    for (let i = 0; i < vocabSize; i += 1) {
      const t = tokens[i] ?? '';
      if (/^<0x[0-9A-F]{2}>$/.test(t)) types[i] = TOKEN_TYPE.byte;
      const r = rank.get(t);
      if (r !== undefined && types[i] === TOKEN_TYPE.normal) scores[i] = -r;
      else if (types[i] === TOKEN_TYPE.normal && [...t].length > 1) scores[i] = -1e9;
    }
    if (typeof model.unk_token === 'string') {
      const unk = vocab[model.unk_token];
      if (typeof unk === 'number') {
        types[unk] = TOKEN_TYPE.unknown;
        md.set('tokenizer.ggml.unknown_token_id', gguf.u32(unk));
      }
    }
    md.set('tokenizer.ggml.model', gguf.str('llama'));
    md.set('tokenizer.ggml.tokens', gguf.strArray(tokens as string[]));
    md.set('tokenizer.ggml.scores', gguf.f32Array(scores));
    md.set('tokenizer.ggml.token_type', gguf.i32Array(types));
    md.set('tokenizer.ggml.add_space_prefix', gguf.bool(prefix));
  } else {
    kind = 'gpt2';
    const norm = obj(tj.normalizer);
    if (norm !== null && norm.type !== 'NFC') throw new UnsupportedError({ what: 'normalizer on a byte-level tokenizer', got: norm.type, supported: ['none', 'NFC'], where: `${file}: normalizer` });
    if (norm?.type === 'NFC') warnings.push('the tokenizer applies NFC normalization, which llama.cpp does not: text that is not already in NFC may tokenize differently');
    pre = byteLevelPre(obj(tj.pre_tokenizer), file);
    md.set('tokenizer.ggml.model', gguf.str('gpt2'));
    md.set('tokenizer.ggml.pre', gguf.str(pre));
    md.set('tokenizer.ggml.tokens', gguf.strArray(tokens as string[]));
    md.set('tokenizer.ggml.token_type', gguf.i32Array(types));
    md.set('tokenizer.ggml.merges', gguf.strArray(merges));
  }

  const idOf = (field: string): number | null => {
    const text = tokenText(tc[field]);
    if (text === null) return null;
    const id = tokens.indexOf(text);
    if (id < 0) throw new FormatError({ file: configFile, field, expected: 'a token of tokenizer.json', got: text });
    return id;
  };
  const bos = idOf('bos_token') ?? ids.bos;
  const eos = idOf('eos_token') ?? ids.eos[0] ?? null;
  const pad = idOf('pad_token') ?? ids.pad;
  if (bos !== null) md.set('tokenizer.ggml.bos_token_id', gguf.u32(bos));
  if (eos !== null) md.set('tokenizer.ggml.eos_token_id', gguf.u32(eos));
  else warnings.push('no EOS token in tokenizer_config.json or config.json: llama.cpp will not know where a reply ends');
  if (pad !== null) md.set('tokenizer.ggml.padding_token_id', gguf.u32(pad));
  // BOS/EOS added on encode: the config's flags, else what the post-processor template adds.
  const post = obj(tj.post_processor);
  const single = post?.type === 'TemplateProcessing' && Array.isArray(post.single) ? (post.single as unknown[]).map(obj) : [];
  const specialAt = (i: number): string | null => {
    const s = obj(single[i]?.SpecialToken);
    return typeof s?.id === 'string' ? s.id : null;
  };
  const addBos = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : bos !== null && specialAt(0) === tokens[bos];
  const addEos = typeof tc.add_eos_token === 'boolean' ? tc.add_eos_token : eos !== null && single.length > 1 && specialAt(single.length - 1) === tokens[eos];
  md.set('tokenizer.ggml.add_bos_token', gguf.bool(addBos));
  md.set('tokenizer.ggml.add_eos_token', gguf.bool(addEos));
  if (typeof tc.chat_template === 'string') md.set('tokenizer.chat_template', gguf.str(tc.chat_template));
  else if (tc.chat_template !== undefined && tc.chat_template !== null) throw new UnsupportedError({ what: 'chat_template (named templates)', got: 'a list', where: `${configFile}: chat_template` });
  return { model: kind, pre, tokens: vocabSize, warnings };
}
