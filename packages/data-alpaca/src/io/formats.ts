// The record formats this package reads (Alpaca, Dolly, chat messages, ShareGPT), how one is
// recognised, and the validation that turns a raw JSON record into an Example.
import { FormatError } from '@peft-ts/errors';

/** Names of the record formats. */
export type DatasetFormat = 'alpaca' | 'dolly' | 'messages' | 'sharegpt';

/** Every format name, for option validation and messages. */
export const DATASET_FORMATS: readonly DatasetFormat[] = ['alpaca', 'dolly', 'messages', 'sharegpt'];

/** Where a record came from: its file and 1-based line. */
export interface RecordSource {
  file: string;
  line: number;
}

/** A single-turn instruction record (Alpaca and Dolly both become this). */
export interface InstructionExample {
  kind: 'instruction';
  instruction: string;
  /** Extra context for the instruction; '' when the record has none. */
  input: string;
  output: string;
  source?: RecordSource;
}

/** Chat roles after normalisation (ShareGPT's human/gpt become user/assistant). */
export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** A conversation (chat `messages` and ShareGPT both become this). */
export interface ChatExample {
  kind: 'chat';
  messages: ChatMessage[];
  source?: RecordSource;
}

export type Example = InstructionExample | ChatExample;

const CHAT_ROLES: readonly ChatRole[] = ['system', 'user', 'assistant'];
const SHAREGPT_ROLES: Readonly<Record<string, ChatRole>> = { human: 'user', gpt: 'assistant', system: 'system' };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeKeys(value: unknown): string {
  if (!isObject(value)) return Array.isArray(value) ? 'an array' : `${value === null ? 'null' : typeof value}`;
  const keys = Object.keys(value);
  return keys.length === 0 ? 'an object with no fields' : `an object with fields ${keys.join(', ')}`;
}

/**
 * Recognises the format of a record from its fields: `messages` (chat), `conversations`
 * (ShareGPT), `instruction` + `output` (Alpaca), `instruction` + `response` (Dolly).
 * Returns null when none fits.
 */
export function detectFormat(record: unknown): DatasetFormat | null {
  if (!isObject(record)) return null;
  if ('messages' in record) return 'messages';
  if ('conversations' in record) return 'sharegpt';
  if ('instruction' in record && 'output' in record) return 'alpaca';
  if ('instruction' in record && 'response' in record) return 'dolly';
  return null;
}

/** Like detectFormat, but throws a FormatError naming the location when no format fits. */
export function detectFormatAt(record: unknown, where: string): DatasetFormat {
  const format = detectFormat(record);
  if (format !== null) return format;
  throw new FormatError({
    file: where,
    field: 'record',
    expected:
      'an Alpaca (instruction, input, output), Dolly (instruction, context, response), chat (messages) or ShareGPT (conversations) record',
    got: describeKeys(record),
  });
}

/** A string value as it appears in JSON, so an empty or blank one still shows ("" not nothing). */
function quoted(value: unknown): unknown {
  return typeof value === 'string' ? JSON.stringify(value) : value;
}

function requireString(record: Record<string, unknown>, field: string, where: string, opts: { nonEmpty: boolean; optional: boolean }): string {
  const value = record[field];
  if (value === undefined && opts.optional) return '';
  if (typeof value !== 'string') {
    throw new FormatError({ file: where, field, expected: opts.nonEmpty ? 'a non-empty string' : 'a string', got: value });
  }
  if (opts.nonEmpty && value.trim() === '') {
    throw new FormatError({ file: where, field, expected: 'a non-empty string', got: quoted(value) });
  }
  return value;
}

function parseTurns(
  record: Record<string, unknown>,
  where: string,
  listField: string,
  roleField: string,
  textField: string,
  roles: Readonly<Record<string, ChatRole>>,
): ChatMessage[] {
  const list = record[listField];
  if (!Array.isArray(list) || list.length === 0) {
    throw new FormatError({ file: where, field: listField, expected: 'a non-empty array of turns', got: list });
  }
  const messages: ChatMessage[] = [];
  list.forEach((turn: unknown, i) => {
    const at = `${listField}[${i}]`;
    if (!isObject(turn)) throw new FormatError({ file: where, field: at, expected: `an object with ${roleField} and ${textField}`, got: turn });
    const rawRole = turn[roleField];
    const role = typeof rawRole === 'string' && Object.hasOwn(roles, rawRole) ? roles[rawRole] : undefined;
    if (role === undefined) {
      throw new FormatError({ file: where, field: `${at}.${roleField}`, expected: `one of ${Object.keys(roles).join(', ')}`, got: quoted(rawRole) });
    }
    const content = turn[textField];
    if (typeof content !== 'string') {
      throw new FormatError({ file: where, field: `${at}.${textField}`, expected: 'a string', got: content });
    }
    if (role !== 'system' && content.trim() === '') {
      throw new FormatError({ file: where, field: `${at}.${textField}`, expected: `a non-empty string for a ${String(rawRole)} turn`, got: quoted(content) });
    }
    messages.push({ role, content });
  });
  if (!messages.some((m) => m.role === 'assistant')) {
    const assistant = Object.entries(roles).find(([, r]) => r === 'assistant')?.[0] ?? 'assistant';
    throw new FormatError({ file: where, field: listField, expected: `at least one ${assistant} turn to train on`, got: 'none' });
  }
  return messages;
}

/**
 * Validates one raw record of a known format and returns it as an Example. Throws a
 * FormatError whose `file` is `where` (e.g. `data.jsonl:12`) and whose `field` names the
 * offending field (`output`, `messages[2].role`).
 */
export function parseRecord(value: unknown, format: DatasetFormat, where: string): Example {
  if (!isObject(value)) {
    throw new FormatError({ file: where, field: 'record', expected: 'a JSON object', got: value });
  }
  switch (format) {
    case 'alpaca':
      return {
        kind: 'instruction',
        instruction: requireString(value, 'instruction', where, { nonEmpty: true, optional: false }),
        input: requireString(value, 'input', where, { nonEmpty: false, optional: true }),
        output: requireString(value, 'output', where, { nonEmpty: true, optional: false }),
      };
    case 'dolly':
      return {
        kind: 'instruction',
        instruction: requireString(value, 'instruction', where, { nonEmpty: true, optional: false }),
        input: requireString(value, 'context', where, { nonEmpty: false, optional: true }),
        output: requireString(value, 'response', where, { nonEmpty: true, optional: false }),
      };
    case 'messages':
      return {
        kind: 'chat',
        messages: parseTurns(value, where, 'messages', 'role', 'content', Object.fromEntries(CHAT_ROLES.map((r) => [r, r]))),
      };
    case 'sharegpt':
      return { kind: 'chat', messages: parseTurns(value, where, 'conversations', 'from', 'value', SHAREGPT_ROLES) };
  }
}
