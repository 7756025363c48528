// Parsing and validating a sharded checkpoint's `model.safetensors.index.json`.
import { FormatError } from '@peft-ts/errors';
import { shown } from '../format/header.js';

export interface ShardIndex {
  /** tensor name -> shard file name (relative to the index's directory), in file order */
  weightMap: Map<string, string>;
  /** `metadata.total_size` when present */
  totalSize: number | undefined;
  /** the whole `metadata` object as written */
  metadata: Record<string, unknown>;
}

export function parseShardIndex(text: string, file: string): ShardIndex {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file, field: 'index', expected: 'a JSON object', got: `text that is not JSON (${(cause as Error).message})`, cause });
  }
  if (!isObject(parsed)) {
    throw new FormatError({ file, field: 'index', expected: 'a JSON object with "weight_map"', got: shown(parsed) });
  }
  const weightMapValue = parsed.weight_map;
  if (!isObject(weightMapValue)) {
    throw new FormatError({ file, field: 'weight_map', expected: 'an object mapping tensor names to shard files', got: weightMapValue ?? 'none' });
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMapValue)) {
    const field = `weight_map[${JSON.stringify(name)}]`;
    if (typeof shard !== 'string' || shard === '') {
      throw new FormatError({ file, field, expected: 'a shard file name', got: shown(shard) });
    }
    // Shards live beside the index; a name that climbs out of or roots itself elsewhere is refused.
    if (shard.startsWith('/') || shard.startsWith('\\') || /^[A-Za-z]:/.test(shard) || shard.split(/[\\/]/).includes('..')) {
      throw new FormatError({ file, field, expected: 'a shard file name relative to the index directory', got: shown(shard) });
    }
    weightMap.set(name, shard);
  }
  let metadata: Record<string, unknown> = {};
  let totalSize: number | undefined;
  if ('metadata' in parsed && parsed.metadata !== null) {
    if (!isObject(parsed.metadata)) {
      throw new FormatError({ file, field: 'metadata', expected: 'an object', got: shown(parsed.metadata) });
    }
    metadata = parsed.metadata;
    if ('total_size' in metadata) {
      const value = metadata.total_size;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new FormatError({ file, field: 'metadata.total_size', expected: 'a non-negative integer byte count', got: shown(value) });
      }
      totalSize = value;
    }
  }
  return { weightMap, totalSize, metadata };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
