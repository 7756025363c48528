// Character offsets for tokens, recovered by walking the token bytes along the UTF-8 bytes of
// the text: the tokenizer library returns ids and token strings but no offsets.
const encoder = new TextEncoder();

/** Per-token spans as UTF-16 indices into the text, [start, end). */
export interface Alignment {
  starts: Int32Array;
  ends: Int32Array;
  /** Token bytes that matched nothing in the text (0 unless a normalizer rewrote characters). */
  unaligned: number;
}

const SPACE = 0x20;
const RESYNC_WINDOW = 64;
const RESYNC_PROBE = 4;

function findAhead(src: Uint8Array, from: number, probe: Uint8Array): number {
  const limit = Math.min(src.length - probe.length, from + RESYNC_WINDOW);
  outer: for (let p = from; p <= limit; p += 1) {
    for (let q = 0; q < probe.length; q += 1) if (src[p + q] !== probe[q]) continue outer;
    return p;
  }
  return -1;
}

/**
 * Lines up token bytes with the text. Rules, in order, for each token byte:
 * 1. it equals the next text byte: they match;
 * 2. it is a space the text does not have there: the normalizer inserted it (SentencePiece's
 *    prepended "▁"), so it belongs to no character;
 * 3. otherwise the text skipped something (whitespace a pre-tokenizer dropped, a character an
 *    unknown token stands for): look up to 64 bytes ahead for the token's next bytes and jump.
 * A token's start is the character holding its first matched byte (a token that is only part
 * of a multi-byte character starts at that character); a token with no matched byte has an
 * empty span at the current position.
 */
export function alignTokens(text: string, pieces: readonly Uint8Array[]): Alignment {
  const src = encoder.encode(text);
  const charOf = new Int32Array(src.length + 1);
  {
    let b = 0;
    for (let u = 0; u < text.length; ) {
      const code = text.codePointAt(u) ?? 0;
      const bytes = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
      charOf.fill(u, b, b + bytes);
      b += bytes;
      u += code > 0xffff ? 2 : 1;
    }
    charOf[src.length] = text.length;
  }
  const charEnd = (byte: number): number => {
    const u = charOf[byte] ?? text.length;
    return u + ((text.codePointAt(u) ?? 0) > 0xffff ? 2 : 1);
  };

  const starts = new Int32Array(pieces.length);
  const ends = new Int32Array(pieces.length);
  let unaligned = 0;
  let i = 0;
  pieces.forEach((piece, k) => {
    let first = -1;
    let last = -1;
    for (let j = 0; j < piece.length; j += 1) {
      const x = piece[j];
      if (i < src.length && src[i] === x) {
        if (first < 0) first = i;
        last = i;
        i += 1;
        continue;
      }
      if (x === SPACE) continue;
      const at = findAhead(src, i, piece.subarray(j, Math.min(piece.length, j + RESYNC_PROBE)));
      if (at < 0) {
        unaligned += 1;
        continue;
      }
      i = at;
      if (first < 0) first = i;
      last = i;
      i += 1;
    }
    const start = first >= 0 ? (charOf[first] ?? text.length) : (charOf[i] ?? text.length);
    starts[k] = start;
    ends[k] = last >= 0 ? charEnd(last) : start;
  });
  return { starts, ends, unaligned };
}
