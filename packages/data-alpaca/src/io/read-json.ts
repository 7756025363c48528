// Streaming readers for JSON Lines and for top-level JSON arrays: both hand out one record at a
// time with its 1-based line number, so a multi-GB file is never held or parsed whole. They read
// a ByteSource (a file, a Blob, bytes in memory) a chunk at a time.
import { FormatError } from '@peft-ts/errors';
import { byteChunks, textChunks } from './byte-source.js';
import type { ByteSource } from './byte-source.js';

/** One parsed record and the line it starts on. */
export interface JsonRecord {
  line: number;
  value: unknown;
}

/** A record as the scanners see it: parsed, or the reason it could not be. */
export type ScannedRecord = { line: number; value: unknown; error?: undefined } | { line: number; error: FormatError };

/** How the records of a file are laid out. */
export type FileLayout = 'json' | 'jsonl';

function parseError(path: string, line: number, text: string, cause: unknown): FormatError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const snippet = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return new FormatError({
    file: `${path}:${line}`,
    field: 'record',
    expected: 'one valid JSON value',
    got: `${JSON.stringify(snippet)} (${reason})`,
    cause,
  });
}

/** Byte order marks of encodings other than UTF-8, longest first. */
const FOREIGN_BOMS: readonly [number[], string][] = [
  [[0xff, 0xfe, 0x00, 0x00], 'UTF-32 LE'],
  [[0x00, 0x00, 0xfe, 0xff], 'UTF-32 BE'],
  [[0xff, 0xfe], 'UTF-16 LE'],
  [[0xfe, 0xff], 'UTF-16 BE'],
];

function encodingError(path: string, got: string, line?: number): FormatError {
  return new FormatError({ file: line === undefined ? path : `${path}:${line}`, field: 'encoding', expected: 'UTF-8 text', got });
}

/** What was found, and how to convert such a file. */
function foreignEncoding(what: string): string {
  const from = what.includes('UTF-16') ? 'UTF-16' : what.includes('UTF-32') ? 'UTF-32' : 'latin1';
  return `${what}; convert the file to UTF-8 (e.g. iconv -f ${from} -t UTF-8)`;
}

/**
 * Checks that a file is UTF-8: no byte order mark of another encoding, no NUL bytes (UTF-16
 * without a mark), and every byte sequence valid UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF). Names the line of the first bad byte. Reads the file once, streaming.
 */
export async function checkUtf8(source: ByteSource): Promise<void> {
  const path = source.name;
  let line = 1;
  let need = 0;
  let lower = 0x80;
  let upper = 0xbf;
  let first = true;
  let lead = 0;
  const hex = (b: number) => `0x${b.toString(16).toUpperCase().padStart(2, '0')}`;
  const convert = foreignEncoding;
  for await (const chunk of byteChunks(source)) {
    if (first) {
      first = false;
      for (const [bom, name] of FOREIGN_BOMS) {
        if (bom.every((b, i) => chunk[i] === b)) throw encodingError(path, convert(`a ${name} byte order mark`));
      }
    }
    for (const b of chunk) {
      if (need > 0) {
        if (b < lower || b > upper) throw encodingError(path, convert(`the byte ${hex(lead)} followed by ${hex(b)}, which is not UTF-8 (Latin-1 or Windows-1252 text?)`), line);
        lower = 0x80;
        upper = 0xbf;
        need -= 1;
        continue;
      }
      if (b < 0x80) {
        if (b === 0x0a) line += 1;
        else if (b === 0x00) throw encodingError(path, convert('a NUL byte (UTF-16 text without a byte order mark, or a binary file?)'), line);
        continue;
      }
      lead = b;
      if (b >= 0xc2 && b <= 0xdf) need = 1;
      else if (b === 0xe0) [need, lower] = [2, 0xa0];
      else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) need = 2;
      else if (b === 0xed) [need, upper] = [2, 0x9f];
      else if (b === 0xf0) [need, lower] = [3, 0x90];
      else if (b >= 0xf1 && b <= 0xf3) need = 3;
      else if (b === 0xf4) [need, upper] = [3, 0x8f];
      else throw encodingError(path, convert(`the byte ${hex(b)}, which is not UTF-8 (Latin-1 or Windows-1252 text?)`), line);
    }
  }
  if (need > 0) throw encodingError(path, 'a multi-byte UTF-8 sequence cut off by the end of the file', line);
}

/**
 * Looks at the first non-blank character: `[` means a JSON array, `{` JSON Lines. Reads only
 * as much of the source as it takes to find that character.
 */
export async function detectLayoutFrom(source: ByteSource): Promise<FileLayout> {
  const path = source.name;
  let line = 1;
  let first = true;
  for await (const chunk of byteChunks(source, 4096)) {
    if (first) {
      for (const [bom, name] of FOREIGN_BOMS) {
        if (chunk.length >= bom.length && bom.every((b, i) => chunk[i] === b)) throw encodingError(path, foreignEncoding(`a ${name} byte order mark`));
      }
    }
    for (let i = 0; i < chunk.length; i += 1) {
      const byte = chunk[i];
      if (byte === 0x0a) line += 1;
      if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
      // A UTF-8 byte order mark (EF BB BF) is allowed at the very start.
      if (first && i === 0 && byte === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
        i += 2;
        continue;
      }
      if (byte === 0x5b) return 'json';
      if (byte === 0x7b) return 'jsonl';
      throw new FormatError({
        file: `${path}:${line}`,
        field: 'file',
        expected: "a JSON array ('[') or JSON Lines of objects ('{')",
        got: JSON.stringify(String.fromCharCode(byte ?? 0)),
      });
    }
    first = false;
  }
  throw new FormatError({ file: path, field: 'file', expected: 'a JSON array or JSON Lines of objects', got: 'an empty file' });
}

/** The lines of a text stream, split at \n, \r\n or a lone \r (as Node's readline splits them). */
async function* textLines(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let pending = '';
  for await (const chunk of chunks) {
    pending += chunk;
    let from = 0;
    for (let i = 0; i < pending.length; i += 1) {
      const c = pending.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      // A \r at the end of the text seen so far may be the first half of \r\n.
      if (c === 0x0d && i === pending.length - 1) break;
      yield pending.slice(from, i);
      if (c === 0x0d && pending.charCodeAt(i + 1) === 0x0a) i += 1;
      from = i + 1;
    }
    pending = pending.slice(from);
  }
  if (pending.endsWith('\r')) pending = pending.slice(0, -1);
  if (pending !== '') yield pending;
}

/** JSON Lines, one record per non-blank line; malformed lines come back as errors. */
export async function* scanJsonl(source: ByteSource): AsyncGenerator<ScannedRecord> {
  await checkUtf8(source);
  const path = source.name;
  let line = 0;
  for await (const raw of textLines(textChunks(source))) {
    line += 1;
    const text = line === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    if (text.trim() === '') continue;
    try {
      yield { line, value: JSON.parse(text) as unknown };
    } catch (cause) {
      yield { line, error: parseError(path, line, text, cause) };
    }
  }
}

/**
 * The elements of a top-level JSON array, split by a small scanner that tracks strings and
 * nesting, then parsed one at a time. An element that does not parse comes back as an error;
 * a file that is not an array at all, or has content after its closing `]`, throws.
 */
export async function* scanJsonArray(source: ByteSource): AsyncGenerator<ScannedRecord> {
  await checkUtf8(source);
  const path = source.name;
  let line = 1;
  let phase: 'start' | 'items' | 'end' = 'start';
  let collecting = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let parts: string[] = [];
  let elementLine = 0;
  let afterComma = false;
  let elements = 0;

  const structural = (expected: string, got: string) =>
    new FormatError({ file: `${path}:${line}`, field: 'file', expected, got });

  const finish = (text: string): ScannedRecord => {
    collecting = false;
    elements += 1;
    try {
      return { line: elementLine, value: JSON.parse(text) as unknown };
    } catch (cause) {
      return { line: elementLine, error: parseError(path, elementLine, text.trim(), cause) };
    }
  };

  for await (const chunk of textChunks(source)) {
    let from = collecting ? 0 : -1;
    for (let i = 0; i < chunk.length; i += 1) {
      const c = chunk.charCodeAt(i);
      if (c === 0x0a) line += 1;
      if (phase === 'start') {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff) continue;
        if (c === 0x5b) {
          phase = 'items';
          continue;
        }
        throw structural("a JSON array ('[')", JSON.stringify(chunk[i]));
      }
      if (phase === 'end') {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        throw structural("nothing after the array's closing ']'", JSON.stringify(chunk.slice(i, i + 20)));
      }
      if (collecting) {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) inString = false;
          continue;
        }
        if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth += 1;
        else if ((c === 0x7d || c === 0x5d) && depth > 0) depth -= 1;
        else if (depth === 0 && (c === 0x2c || c === 0x5d)) {
          parts.push(chunk.slice(from, i));
          const record = finish(parts.join(''));
          parts = [];
          from = -1;
          afterComma = c === 0x2c;
          if (c === 0x5d) phase = 'end';
          yield record;
        }
        continue;
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      if (c === 0x5d) {
        if (afterComma) throw structural('a value after the comma', "']' (a trailing comma)");
        phase = 'end';
        continue;
      }
      if (c === 0x2c) {
        throw structural('a value', elements === 0 ? "',' before the first element" : "',' (an empty element)");
      }
      collecting = true;
      from = i;
      elementLine = line;
      depth = c === 0x7b || c === 0x5b ? 1 : 0;
      inString = c === 0x22;
      escaped = false;
      afterComma = false;
    }
    if (collecting && from >= 0) parts.push(chunk.slice(from));
  }
  if (phase === 'start') {
    throw new FormatError({ file: path, field: 'file', expected: "a JSON array ('[')", got: 'an empty file' });
  }
  if (collecting) {
    const text = parts.join('').trim();
    yield { line: elementLine, error: parseError(path, elementLine, text, new Error('the file ends inside this record')) };
  }
  if (phase !== 'end') throw structural("the array's closing ']'", 'the end of the file');
}

/**
 * Reads JSON Lines record by record, streaming. Throws a FormatError naming `name:line` at
 * the first line that is not valid JSON.
 */
export async function* readJsonlFrom(source: ByteSource): AsyncGenerator<JsonRecord> {
  for await (const record of scanJsonl(source)) {
    if (record.error) throw record.error;
    yield { line: record.line, value: record.value };
  }
}

/** Reads the elements of a top-level JSON array one by one, with the line each starts on. */
export async function* readJsonArrayFrom(source: ByteSource): AsyncGenerator<JsonRecord> {
  for await (const record of scanJsonArray(source)) {
    if (record.error) throw record.error;
    yield { line: record.line, value: record.value };
  }
}
