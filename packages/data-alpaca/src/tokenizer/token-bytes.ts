// The bytes of input text that one token stands for, read off its vocabulary string the way
// the tokenizer's decoder would: byte-level BPE alphabets, SentencePiece's "▁" for space,
// <0xNN> byte-fallback pieces. Offsets are recovered by lining these bytes up with the text.

interface DecoderConfig {
  type?: string;
  decoders?: DecoderConfig[];
  pattern?: { String?: string };
  content?: string;
  replacement?: string;
  prefix?: string;
  suffix?: string;
}

interface TokenizerJsonShape {
  decoder?: DecoderConfig | null;
  pre_tokenizer?: DecoderConfig & { pretokenizers?: DecoderConfig[] } | null;
  model?: { type?: string; byte_fallback?: boolean; continuing_subword_prefix?: string | null; end_of_word_suffix?: string | null };
}

// The byte-level BPE alphabet: printable Latin-1 bytes stand for themselves, and the other
// 68 byte values are moved, in order, to code points from 256 up, so every byte is printable.
function byteLevelAlphabet(): Map<number, number> {
  const charToByte = new Map<number, number>();
  let shifted = 0;
  for (let byte = 0; byte < 256; byte += 1) {
    const printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    if (printable) charToByte.set(byte, byte);
    else {
      charToByte.set(256 + shifted, byte);
      shifted += 1;
    }
  }
  return charToByte;
}

function flatten(config: DecoderConfig | null | undefined): DecoderConfig[] {
  if (!config) return [];
  const nested = config.decoders ?? (config as { pretokenizers?: DecoderConfig[] }).pretokenizers;
  return nested ? [config, ...nested.flatMap(flatten)] : [config];
}

const encoder = new TextEncoder();
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** Builds the token-string -> bytes function for a parsed tokenizer.json. */
export function tokenBytesFunction(json: unknown): (token: string) => Uint8Array {
  const shape = (json ?? {}) as TokenizerJsonShape;
  const decoders = flatten(shape.decoder);
  const preTokenizers = flatten(shape.pre_tokenizer);
  const byteLevel = decoders.some((d) => d.type === 'ByteLevel') || preTokenizers.some((d) => d.type === 'ByteLevel');
  const byteFallback = shape.model?.byte_fallback === true || decoders.some((d) => d.type === 'ByteFallback');
  const spaceMarks = new Set<string>();
  for (const d of decoders) {
    if (d.type === 'Replace' && d.pattern?.String !== undefined && d.content === ' ') spaceMarks.add(d.pattern.String);
    if (d.type === 'Metaspace') spaceMarks.add(d.replacement ?? '\u2581');
  }
  const wordPiece = decoders.find((d) => d.type === 'WordPiece');
  const subwordPrefix = wordPiece ? (wordPiece.prefix ?? '##') : shape.model?.continuing_subword_prefix || '';
  const wordSuffix = shape.model?.end_of_word_suffix || '';
  const alphabet = byteLevel ? byteLevelAlphabet() : null;

  return (token: string): Uint8Array => {
    if (alphabet) {
      const out: number[] = [];
      for (const ch of token) {
        const code = ch.codePointAt(0) ?? 0;
        const byte = alphabet.get(code);
        if (byte !== undefined) out.push(byte);
        else out.push(...encoder.encode(ch));
      }
      return Uint8Array.from(out);
    }
    if (byteFallback) {
      const match = BYTE_PIECE.exec(token);
      if (match?.[1] !== undefined) return Uint8Array.of(Number.parseInt(match[1], 16));
    }
    let text = token;
    if (subwordPrefix && text.startsWith(subwordPrefix)) text = text.slice(subwordPrefix.length);
    if (wordSuffix && text.endsWith(wordSuffix)) text = `${text.slice(0, -wordSuffix.length)} `;
    for (const mark of spaceMarks) text = text.replaceAll(mark, ' ');
    return encoder.encode(text);
  };
}
