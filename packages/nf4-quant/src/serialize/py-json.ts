// JSON as Python's json module writes it (float repr, separators, ensure_ascii, sort_keys),
// and a parser that keeps number tokens verbatim, so configs round-trip without `6.0` -> `6`.
import { FormatError } from '@peft-ts/errors';

/** A number read from a file, kept as its source text (so `10000.0` stays `10000.0`). */
export class JsonNumber {
  constructor(readonly raw: string) {}
  get value(): number {
    return Number(this.raw);
  }
}

/** A number to write as a Python float even when it is integral (`6` -> `6.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJsonValue = null | boolean | string | number | JsonNumber | PyFloat | PyJsonValue[] | PyJsonObject;
export interface PyJsonObject {
  [key: string]: PyJsonValue;
}

/**
 * `repr(float)` as Python prints it: the shortest digits that round-trip, fixed notation for
 * decimal exponents in [-4, 16), otherwise `d.ddde±XX` with at least two exponent digits, and
 * always a `.0` on integral values. NaN and infinities come out as json.dumps writes them.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() without an argument yields the shortest round-trip digits, as repr does.
  const [mantissa = '', expText = '0'] = x.toExponential().split('e');
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  const exp = Number(expText);
  const point = exp + 1; // digits d1 d2 ... stand for 0.d1d2... * 10^point
  if (point > -4 && point <= 16) {
    if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
  const expAbs = String(Math.abs(exp)).padStart(2, '0');
  return `${sign}${digits[0] ?? ''}${fraction}e${exp < 0 ? '-' : '+'}${expAbs}`;
}

/** A JSON string literal with everything outside printable ASCII escaped (ensure_ascii=True). */
export function pyJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

export interface PyJsonDumpOptions {
  /** Pretty-print with this many spaces per level (json.dumps' `indent`); compact `, `/`: ` otherwise. */
  indent?: number;
  /** Sort object keys by code point (json.dumps' `sort_keys`). */
  sortKeys?: boolean;
}

/**
 * `json.dumps(value, indent=..., sort_keys=...)`. Plain numbers are ints when integral and
 * floats otherwise; `PyFloat` forces a float, `JsonNumber` writes its source text.
 */
export function pyJsonDumps(value: PyJsonValue, options: PyJsonDumpOptions = {}): string {
  return dump(value, options, 0);
}

function dump(value: PyJsonValue, options: PyJsonDumpOptions, depth: number): string {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'string') return pyJsonString(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (value instanceof JsonNumber) return value.raw;
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  const indent = options.indent;
  const open = (items: string[], l: string, r: string): string => {
    if (items.length === 0) return `${l}${r}`;
    if (indent === undefined) return `${l}${items.join(', ')}${r}`;
    const pad = ' '.repeat(indent * (depth + 1));
    return `${l}\n${pad}${items.join(`,\n${pad}`)}\n${' '.repeat(indent * depth)}${r}`;
  };
  if (Array.isArray(value)) return open(value.map((v) => dump(v, options, depth + 1)), '[', ']');
  const keys = Object.keys(value);
  if (options.sortKeys) keys.sort(compareCodePoints);
  return open(
    keys.map((k) => `${pyJsonString(k)}: ${dump(value[k] as PyJsonValue, options, depth + 1)}`),
    '{',
    '}',
  );
}

function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Parses JSON keeping numbers as `JsonNumber` tokens; malformed text is a FormatError. */
export function parseJsonDocument(text: string, file: string, field = '(document)'): PyJsonValue {
  try {
    JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file, field, expected: 'valid JSON', got: (cause as Error).message, cause });
  }
  const parser = new DocumentParser(text);
  return parser.value();
}

/** A parsed document as plain JavaScript values (numbers as numbers). */
export function toPlain(value: PyJsonValue): unknown {
  if (value instanceof JsonNumber || value instanceof PyFloat) return value.value;
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, toPlain(v));
    return out;
  }
  return value;
}

// Defines rather than assigns, so a key such as "__proto__" stays an ordinary key.
function setOwn(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

// Only ever runs on text JSON.parse accepted, so it needs no error reporting of its own.
class DocumentParser {
  #i = 0;
  constructor(private readonly text: string) {}

  value(): PyJsonValue {
    this.#ws();
    const c = this.text[this.#i];
    if (c === '{') return this.#object();
    if (c === '[') return this.#array();
    if (c === '"') return this.#string();
    if (c === 't') return this.#literal('true', true);
    if (c === 'f') return this.#literal('false', false);
    if (c === 'n') return this.#literal('null', null);
    return this.#number();
  }

  #ws(): void {
    while (/\s/.test(this.text[this.#i] ?? '')) this.#i++;
  }

  #literal<T extends PyJsonValue>(word: string, v: T): T {
    this.#i += word.length;
    return v;
  }

  #number(): JsonNumber {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.#i;
    const raw = m.exec(this.text)?.[0] ?? '';
    this.#i += raw.length;
    return new JsonNumber(raw);
  }

  #string(): string {
    const m = /"(?:[^"\\]|\\.)*"/y;
    m.lastIndex = this.#i;
    const raw = m.exec(this.text)?.[0] ?? '""';
    this.#i += raw.length;
    return JSON.parse(raw) as string;
  }

  #array(): PyJsonValue[] {
    const out: PyJsonValue[] = [];
    this.#i++;
    this.#ws();
    if (this.text[this.#i] === ']') {
      this.#i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.#ws();
      if (this.text[this.#i++] === ']') return out;
    }
  }

  #object(): PyJsonObject {
    const out: PyJsonObject = {};
    this.#i++;
    this.#ws();
    if (this.text[this.#i] === '}') {
      this.#i++;
      return out;
    }
    for (;;) {
      this.#ws();
      const key = this.#string();
      this.#ws();
      this.#i++; // ':'
      setOwn(out, key, this.value());
      this.#ws();
      if (this.text[this.#i++] === '}') return out;
    }
  }
}
