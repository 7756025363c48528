// config.json as transformers writes it (json.dumps(indent=2, sort_keys=True) + newline), with
// the number tokens of a config we read kept verbatim so `10000.0` does not become `10000`.
import { FormatError } from '@peft-ts/errors';
import { readText, type FileTree } from '@peft-ts/safetensors';
import { quantizationConfigJson, type BnbQuantizationConfig } from '../serialize/quantization-config.js';
import { JsonNumber, PyFloat, parseJsonDocument, pyJsonDumps, toPlain, type PyJsonObject, type PyJsonValue } from '../serialize/py-json.js';

// The document each config object was parsed from, to write its numbers as they were read.
const sourceDocuments = new WeakMap<object, PyJsonObject>();

/** Reads `name` (default config.json) of a tree into plain values; see parseConfigJson. */
export async function readConfigJsonFrom(tree: FileTree, name = 'config.json'): Promise<Record<string, unknown>> {
  const path = `${tree.name}/${name}`;
  let text: string;
  try {
    text = await readText(tree, name);
  } catch (cause) {
    throw new FormatError({ file: path, field: '(file)', expected: 'a readable config.json', got: (cause as Error).message, cause });
  }
  return parseConfigJson(text, path);
}

/** Parses config.json text into plain values, remembering its number tokens for writing it back. */
export function parseConfigJson(text: string, path: string): Record<string, unknown> {
  const doc = parseJsonDocument(text, path);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || doc instanceof JsonNumber || doc instanceof PyFloat) {
    throw new FormatError({ file: path, field: '(document)', expected: 'a JSON object', got: text.slice(0, 40) });
  }
  const plain = toPlain(doc) as Record<string, unknown>;
  sourceDocuments.set(plain, doc);
  return plain;
}

/**
 * config.json text for a quantized model: `config` with `quantization_config` set. A config
 * that came from `parseConfigJson`/`readConfigJsonFrom` and was not modified keeps its original number tokens.
 */
export function quantizedConfigText(config: Record<string, unknown>, quantization: BnbQuantizationConfig, file: string): string {
  const source = sourceDocuments.get(config);
  const base: PyJsonObject =
    source && deepEqual(toPlain(source), config) ? { ...source } : (fromPlain(config, file, '') as PyJsonObject);
  Object.defineProperty(base, 'quantization_config', {
    value: quantizationConfigJson(quantization),
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return `${pyJsonDumps(base, { indent: 2, sortKeys: true })}\n`;
}

function fromPlain(value: unknown, file: string, path: string): PyJsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    throw new FormatError({ file, field: path || '(config)', expected: 'a finite number', got: value });
  }
  if (Array.isArray(value)) return value.map((v, i) => fromPlain(v, file, `${path}[${i}]`));
  if (typeof value === 'object') {
    const out: PyJsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: fromPlain(v, file, path ? `${path}.${k}` : k), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  throw new FormatError({ file, field: path || '(config)', expected: 'a JSON value', got: typeof value });
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
