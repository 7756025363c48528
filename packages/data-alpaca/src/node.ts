// Node-only entry of @peft-ts/data-alpaca: datasets and tokenizers read from paths, and the
// shipped example dataset's path. Re-exports the main entry, so Node code can import from here
// alone; the main entry runs in a browser and never imports this file.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ByteSource, FileTree } from './io/byte-source.js';
import { Dataset, loadDatasetFrom, readExamplesFrom } from './io/load-dataset.js';
import type { LoadOptions, LoadSummary } from './io/load-dataset.js';
import type { Example } from './io/formats.js';
import { detectLayoutFrom, readJsonArrayFrom, readJsonlFrom } from './io/read-json.js';
import type { FileLayout, JsonRecord } from './io/read-json.js';
import { Tokenizer } from './tokenizer/tokenizer.js';
import type { TokenizerOptions } from './tokenizer/tokenizer.js';

export * from './index.js';

/**
 * A file as a ByteSource: its size when opened, and each read a positioned read of its own
 * (no handle is held between reads, so an abandoned stream leaks nothing).
 */
export async function fileByteSource(path: string): Promise<ByteSource> {
  const { size } = await stat(path);
  return {
    name: path,
    size,
    read: async (offset, length) => {
      const handle = await open(path, 'r');
      try {
        const bytes = new Uint8Array(length);
        let filled = 0;
        while (filled < length) {
          const { bytesRead } = await handle.read(bytes, filled, length - filled, offset + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return filled === length ? bytes : bytes.subarray(0, filled);
      } finally {
        await handle.close();
      }
    },
  };
}

/** A directory as a FileTree (read-only); `list` walks it recursively. */
export function directoryTree(dir: string): FileTree {
  return {
    name: dir,
    list: async () => {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile())
        .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
        .sort();
    },
    open: async (name) => {
      try {
        return await fileByteSource(join(dir, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
  };
}

/**
 * Streams the examples of a dataset file, validating each record. The generator's return value
 * is the LoadSummary (use `loadDataset` to get both at once).
 */
export async function* readExamples(path: string, options: LoadOptions = {}): AsyncGenerator<Example, LoadSummary> {
  return yield* readExamplesFrom(await fileByteSource(path), options);
}

/**
 * Loads and validates a whole dataset file (a JSON array or JSON Lines) into memory. Fails when
 * a record is invalid (unless `onInvalid: 'skip'`) and when no valid example remains.
 */
export async function loadDataset(path: string, options: LoadOptions = {}): Promise<Dataset> {
  return loadDatasetFrom(await fileByteSource(path), options);
}

/** The layout of a dataset file from its first non-blank character: `[` json, `{` jsonl. */
export async function detectLayout(path: string): Promise<FileLayout> {
  return detectLayoutFrom(await fileByteSource(path));
}

/** Reads a JSON Lines file record by record, streaming; throws naming `path:line` at a bad line. */
export async function* readJsonl(path: string): AsyncGenerator<JsonRecord> {
  yield* readJsonlFrom(await fileByteSource(path));
}

/** Reads the elements of a top-level JSON array file one by one, with the line each starts on. */
export async function* readJsonArray(path: string): AsyncGenerator<JsonRecord> {
  yield* readJsonArrayFrom(await fileByteSource(path));
}

/**
 * Loads `tokenizer.json` and `tokenizer_config.json` (plus `special_tokens_map.json` and
 * `chat_template.jinja` when present) from a model directory.
 */
export function tokenizerFromDir(dir: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
  return Tokenizer.fromTree(directoryTree(dir), options);
}

/** Loads from explicit paths; without a config path the tokenizer has no config fields. */
export async function tokenizerFromFiles(tokenizerJsonPath: string, tokenizerConfigPath?: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
  const json = await readFile(tokenizerJsonPath, 'utf8');
  const config = tokenizerConfigPath === undefined ? {} : await readFile(tokenizerConfigPath, 'utf8');
  return Tokenizer.fromJSON(json, config, options, { json: tokenizerJsonPath, config: tokenizerConfigPath ?? 'tokenizer_config.json' });
}

/**
 * Absolute path of the shipped `data/example-alpaca.json`. The file sits one folder below the
 * package root both as source (src/) and as the bundle (dist/), so the relative URL holds in both.
 */
export function exampleDatasetPath(): string {
  return fileURLToPath(new URL('../data/example-alpaca.json', import.meta.url));
}
