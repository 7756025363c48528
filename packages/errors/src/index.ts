// The error classes shared by every @peft-ts package. `isInstance` checks a Symbol.for brand,
// so it holds even when two copies of this package end up installed side by side.

const BRAND = Symbol.for('@peft-ts/error');

/** Base class of every error a @peft-ts package throws on purpose. */
export class PeftError extends Error {
  readonly [BRAND] = true;
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** True for any PeftError, including one from another installed copy of this package. */
  static isInstance(value: unknown): value is PeftError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined) return 'nothing';
  if (typeof value === 'object' && value !== null) {
    const json = JSON.stringify(value);
    return json.length > 200 ? `${json.slice(0, 197)}...` : json;
  }
  if (typeof value === 'function') return `function ${value.name}`;
  if (typeof value === 'symbol') return value.toString();
  return `${value as number | boolean | null}`;
}

/** An op received tensors whose shapes do not fit together. */
export class ShapeMismatchError extends PeftError {
  readonly op: string;
  readonly expected: unknown;
  readonly got: unknown;

  constructor(args: { op: string; expected: unknown; got: unknown; detail?: string }) {
    super(
      'SHAPE_MISMATCH',
      `${args.op}: shape mismatch, expected ${describe(args.expected)}, got ${describe(args.got)}` +
        (args.detail ? ` (${args.detail})` : ''),
    );
    this.op = args.op;
    this.expected = args.expected;
    this.got = args.got;
  }
}

/** An op received a tensor of a dtype it does not take. */
export class DTypeError extends PeftError {
  readonly op: string;
  readonly expected: string;
  readonly got: string;

  constructor(args: { op: string; expected: string; got: string }) {
    super('DTYPE', `${args.op}: expected dtype ${args.expected}, got ${args.got}`);
    this.op = args.op;
    this.expected = args.expected;
    this.got = args.got;
  }
}

/** A file (or a record in one) is not what its format requires. */
export class FormatError extends PeftError {
  readonly file: string;
  readonly field: string;
  readonly expected: string;
  readonly got: string;

  constructor(args: { file: string; field: string; expected: string; got: unknown; cause?: unknown }) {
    const got = typeof args.got === 'string' ? args.got : describe(args.got);
    super('FORMAT', `${args.file}: ${args.field}: expected ${args.expected}, got ${got}`, { cause: args.cause });
    this.file = args.file;
    this.field = args.field;
    this.expected = args.expected;
    this.got = got;
  }
}

/** A valid input that this version does not support (a config, an architecture, a dtype). */
export class UnsupportedError extends PeftError {
  readonly what: string;
  readonly supported: readonly string[];

  constructor(args: { what: string; got: unknown; supported?: readonly string[]; where?: string }) {
    const where = args.where ? `${args.where}: ` : '';
    const supported = args.supported?.length ? `; supported: ${args.supported.join(', ')}` : '';
    super('UNSUPPORTED', `${where}unsupported ${args.what} ${describe(args.got)}${supported}`);
    this.what = args.what;
    this.supported = args.supported ?? [];
  }
}

/** The GPU could not be acquired, reported an error, or was lost. */
export class DeviceError extends PeftError {
  readonly reason: string;

  constructor(message: string, args: { reason?: string; cause?: unknown } = {}) {
    super('DEVICE', message, { cause: args.cause });
    this.reason = args.reason ?? 'error';
  }
}

/** An allocation or plan would exceed the memory budget the user set or the device has. */
export class OutOfMemoryBudgetError extends PeftError {
  readonly requestedBytes: number;
  readonly budgetBytes: number;
  readonly what: string;

  constructor(args: { what: string; requestedBytes: number; budgetBytes: number; detail?: string }) {
    super(
      'OUT_OF_MEMORY_BUDGET',
      `${args.what}: needs ${formatBytes(args.requestedBytes)} but the budget is ${formatBytes(args.budgetBytes)}` +
        (args.detail ? ` (${args.detail})` : ''),
    );
    this.requestedBytes = args.requestedBytes;
    this.budgetBytes = args.budgetBytes;
    this.what = args.what;
  }
}

/** Bytes as a short human string: 1.50 GiB, 12.0 MiB, 512 B. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}
