// Flag parsing for the commands: node's parseArgs with typed conversion and errors that name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PeftError } from '@peft-ts/errors';

export class UsageError extends PeftError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** A token that reads as a negative number: -1, -1e-4, -.5, -2.5E+3. */
const NEGATIVE_NUMBER = /^-(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * parseArgs refuses `--lr -1e-4` as ambiguous (the value starts with a dash). A negative number
 * right after an option that takes a value is that option's value, so it is joined to it here
 * (`--lr=-1e-4`, `-x-1`) before parsing; nothing after `--` is touched.
 */
export function joinNegativeValues(argv: readonly string[], flags: FlagSpec): string[] {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(flags)) {
    if (spec.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if (spec.short) takesValue.add(`-${spec.short}`);
  }
  const result: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const token = argv[i] ?? '';
    if (token === '--') {
      result.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (takesValue.has(token) && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      result.push(token.startsWith('--') ? `${token}=${next}` : `${token}${next}`);
      i += 1;
    } else result.push(token);
  }
  return result;
}

export function parse(command: string, argv: string[], flags: FlagSpec): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const config: ParseArgsConfig = { args: joinNegativeValues(argv, flags), options: { ...flags, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true };
    const { values, positionals } = parseArgs(config);
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (error) {
    throw new UsageError(`peft-ts ${command}: ${(error as Error).message}`);
  }
}

export function numberFlag(command: string, name: string, value: unknown, { integer = false, min = -Infinity } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`peft-ts ${command}: --${name}: expected ${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function choiceFlag<T extends string>(command: string, name: string, value: unknown, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw new UsageError(`peft-ts ${command}: --${name}: expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

export function requirePositionals(command: string, positionals: string[], names: string[], usage: string): string[] {
  if (positionals.length < names.length) throw new UsageError(`peft-ts ${command}: missing ${names.slice(positionals.length).join(', ')}\n\n${usage}`);
  if (positionals.length > names.length) throw new UsageError(`peft-ts ${command}: unexpected argument ${JSON.stringify(positionals[names.length])}\n\n${usage}`);
  return positionals;
}

export const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
