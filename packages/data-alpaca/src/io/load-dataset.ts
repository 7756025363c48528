// Loading a dataset file: picks the layout (JSON array or JSON Lines) and the record format,
// validates every record, and either fails on the first bad one or skips and reports them.
import { FormatError, UnsupportedError } from '@peft-ts/errors';
import { DATASET_FORMATS, detectFormatAt, parseRecord } from './formats.js';
import type { DatasetFormat, Example } from './formats.js';
import { memorySource } from './byte-source.js';
import type { ByteSource } from './byte-source.js';
import { detectLayoutFrom, scanJsonArray, scanJsonl } from './read-json.js';
import type { FileLayout } from './read-json.js';
import { emitWarning } from '../warnings.js';
import type { DataWarning, WarningHandler } from '../warnings.js';

export interface LoadOptions {
  /** Record format; 'auto' (default) detects it from the first record. */
  format?: DatasetFormat | 'auto';
  /** File layout; 'auto' (default) looks at the first character: `[` JSON array, `{` JSON Lines. */
  layout?: FileLayout | 'auto';
  /** 'error' (default) throws at the first invalid record; 'skip' drops it and counts it. */
  onInvalid?: 'error' | 'skip';
  /** How many skipped records' reasons to keep (default 5). */
  maxReasons?: number;
  /** Stop after this many valid examples. */
  limit?: number;
  onWarning?: WarningHandler;
}

/** What a pass over a file found, besides the examples. */
export interface LoadSummary {
  path: string;
  layout: FileLayout;
  /** The format used; null only when the file held no records. */
  format: DatasetFormat | null;
  /** Valid examples produced. */
  examples: number;
  /** Invalid records skipped (always 0 with onInvalid 'error'). */
  invalid: number;
  /** The first `maxReasons` reasons, each naming `file:line` and the field. */
  invalidReasons: FormatError[];
  warnings: DataWarning[];
}

function checkOptions(options: LoadOptions): void {
  if (options.format !== undefined && options.format !== 'auto' && !DATASET_FORMATS.includes(options.format)) {
    throw new UnsupportedError({ what: 'dataset format', got: options.format, supported: ['auto', ...DATASET_FORMATS], where: 'loadDataset' });
  }
  if (options.onInvalid !== undefined && options.onInvalid !== 'error' && options.onInvalid !== 'skip') {
    throw new UnsupportedError({ what: 'onInvalid', got: options.onInvalid, supported: ['error', 'skip'], where: 'loadDataset' });
  }
}

/**
 * Streams the examples of a dataset's bytes (a file, a Blob, memory), validating each record.
 * The generator's return value is the LoadSummary (use `loadDatasetFrom` to get both at once).
 * Memory stays flat for JSON Lines and for JSON arrays alike: records are parsed one at a time.
 * Messages and `source.file` name the source by its `name`.
 */
export async function* readExamplesFrom(source: ByteSource, options: LoadOptions = {}): AsyncGenerator<Example, LoadSummary> {
  checkOptions(options);
  const path = source.name;
  const skip = options.onInvalid === 'skip';
  const maxReasons = options.maxReasons ?? 5;
  const layout = options.layout === undefined || options.layout === 'auto' ? await detectLayoutFrom(source) : options.layout;
  let format: DatasetFormat | null = options.format === undefined || options.format === 'auto' ? null : options.format;
  const summary: LoadSummary = { path, layout, format, examples: 0, invalid: 0, invalidReasons: [], warnings: [] };

  const reject = (error: FormatError) => {
    if (!skip) throw error;
    summary.invalid += 1;
    if (summary.invalidReasons.length < maxReasons) summary.invalidReasons.push(error);
  };

  const records = layout === 'json' ? scanJsonArray(source) : scanJsonl(source);
  for await (const record of records) {
    const where = `${path}:${record.line}`;
    if (record.error) {
      reject(record.error);
      continue;
    }
    try {
      // The format comes from the first record that parses; with 'skip', a first record of
      // no known format is skipped and the next one decides.
      format ??= detectFormatAt(record.value, where);
      const example = parseRecord(record.value, format, where);
      example.source = { file: path, line: record.line };
      summary.examples += 1;
      yield example;
      if (options.limit !== undefined && summary.examples >= options.limit) break;
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      reject(error);
    }
  }
  summary.format = format;
  if (summary.invalid > 0) {
    const first = summary.invalidReasons.map((e) => e.message).join('; ');
    emitWarning(
      summary.warnings,
      {
        code: 'invalid-records-skipped',
        message: `${path}: skipped ${summary.invalid} invalid record${summary.invalid === 1 ? '' : 's'}; first: ${first}`,
      },
      options.onWarning,
    );
  }
  return summary;
}

/** A loaded dataset: its examples and what loading found. */
export class Dataset {
  constructor(
    readonly examples: readonly Example[],
    readonly summary: LoadSummary,
  ) {}

  get length(): number {
    return this.examples.length;
  }

  get format(): DatasetFormat {
    // A Dataset is only built with at least one example, so a format was found.
    return this.summary.format ?? 'alpaca';
  }

  get warnings(): readonly DataWarning[] {
    return this.summary.warnings;
  }

  map<T>(fn: (example: Example, index: number) => T): T[] {
    return this.examples.map(fn);
  }

  [Symbol.iterator](): Iterator<Example> {
    return this.examples[Symbol.iterator]();
  }
}

/**
 * Loads and validates a whole dataset (a JSON array or JSON Lines) from its bytes into memory.
 * Fails when a record is invalid (unless `onInvalid: 'skip'`) and when no valid example
 * remains. `@peft-ts/data-alpaca/node`'s `loadDataset(path)` reads a file through this.
 */
export async function loadDatasetFrom(source: ByteSource, options: LoadOptions = {}): Promise<Dataset> {
  const path = source.name;
  const examples: Example[] = [];
  const reader = readExamplesFrom(source, options);
  for (;;) {
    const step = await reader.next();
    if (step.done) {
      if (examples.length === 0) {
        const why = step.value.invalid > 0 ? `all ${step.value.invalid} records were invalid; first: ${step.value.invalidReasons[0]?.message ?? ''}` : 'no records';
        throw new FormatError({ file: path, field: 'records', expected: 'at least one valid record', got: why });
      }
      return new Dataset(examples, step.value);
    }
    examples.push(step.value);
  }
}

/**
 * Parses a dataset file's content already in memory (the text or bytes of a JSON array or of
 * JSON Lines, e.g. from a file input or a fetch) with the same rules and options as
 * loadDatasetFrom; `name` (default "dataset") names it in messages, as `name:line`.
 */
export function parseDataset(data: string | Uint8Array, options: LoadOptions & { name?: string } = {}): Promise<Dataset> {
  const { name = 'dataset', ...rest } = options;
  return loadDatasetFrom(memorySource(name, data), rest);
}

/**
 * Validates in-memory records (already parsed JSON) into a Dataset, with the same rules and
 * options as loadDataset; `name` stands in for the file name in messages, which locate a
 * record as `name[index]` (its `source.line` is index + 1).
 */
export function datasetFromRecords(records: readonly unknown[], options: Omit<LoadOptions, 'layout'> & { name?: string } = {}): Dataset {
  checkOptions(options);
  const name = options.name ?? '<records>';
  const skip = options.onInvalid === 'skip';
  const maxReasons = options.maxReasons ?? 5;
  let format: DatasetFormat | null = options.format === undefined || options.format === 'auto' ? null : options.format;
  const summary: LoadSummary = { path: name, layout: 'json', format, examples: 0, invalid: 0, invalidReasons: [], warnings: [] };
  const examples: Example[] = [];
  records.forEach((value, i) => {
    if (options.limit !== undefined && examples.length >= options.limit) return;
    const where = `${name}[${i}]`;
    try {
      format ??= detectFormatAt(value, where);
      const example = parseRecord(value, format, where);
      example.source = { file: name, line: i + 1 };
      examples.push(example);
    } catch (error) {
      if (!(error instanceof FormatError) || !skip) throw error;
      summary.invalid += 1;
      if (summary.invalidReasons.length < maxReasons) summary.invalidReasons.push(error);
    }
  });
  summary.format = format;
  summary.examples = examples.length;
  if (summary.invalid > 0) {
    const first = summary.invalidReasons.map((e) => e.message).join('; ');
    emitWarning(summary.warnings, { code: 'invalid-records-skipped', message: `${name}: skipped ${summary.invalid} invalid records; first: ${first}` }, options.onWarning);
  }
  if (examples.length === 0) {
    throw new FormatError({ file: name, field: 'records', expected: 'at least one valid record', got: summary.invalid > 0 ? `${summary.invalid} invalid records` : 'no records' });
  }
  return new Dataset(examples, summary);
}

