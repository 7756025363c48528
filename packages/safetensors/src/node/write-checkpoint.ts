// Writing a model directory as transformers does: one `model.safetensors`, or shards named
// `model-00001-of-0000N.safetensors` plus `model.safetensors.index.json` past a size limit.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAt, writeAtomically } from './atomic-file.js';
import { shardIndexJson } from '../write/index-json.js';
import type { TensorSource } from '../write/tensor-source.js';
import { collectSources, describeSources } from '../write/write-safetensors.js';
import { writeSafetensors } from './write-safetensors-file.js';

/** transformers' default `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface WriteCheckpointOptions {
  /** Largest sum of tensor bytes per shard (default 5e9); a bigger tensor gets a shard alone. */
  maxShardBytes?: number;
  /** `__metadata__` of every file (default `{ format: 'pt' }`, what transformers writes). */
  metadata?: Record<string, string>;
  /** File name stem (default 'model'). */
  baseName?: string;
}

export interface WrittenCheckpoint {
  /** Paths of the .safetensors files written, in shard order. */
  files: string[];
  /** Sum of all tensors' byte lengths (the index's `metadata.total_size`). */
  totalSize: number;
  /** Path of the index file, when the checkpoint was sharded. */
  indexFile?: string;
}

/**
 * Writes `tensors` into `dir`, sharding past `maxShardBytes`, each file atomically, the index
 * last. Files of an earlier save under the same stem that this save does not produce are
 * removed, so a loader cannot pick up stale shards.
 */
export async function writeCheckpoint(
  dir: string,
  tensors: Iterable<TensorSource> | AsyncIterable<TensorSource>,
  options: WriteCheckpointOptions = {},
): Promise<WrittenCheckpoint> {
  const baseName = options.baseName ?? 'model';
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const metadata = options.metadata ?? { format: 'pt' };
  if (baseName === '' || /[\\/]/.test(baseName) || baseName === '.' || baseName === '..') {
    throw new RangeError(`writeCheckpoint: baseName must be a plain file name stem, got ${JSON.stringify(baseName)}`);
  }
  if (!(maxShardBytes > 0) || (!Number.isSafeInteger(maxShardBytes) && maxShardBytes !== Infinity)) {
    throw new RangeError(`writeCheckpoint: maxShardBytes must be a positive integer or Infinity, got ${maxShardBytes}`);
  }

  const sources = await collectSources(tensors);
  const entries = describeSources(sources, join(dir, `${baseName}.safetensors`));
  const shards = planShards(sources, entries, maxShardBytes);
  const totalSize = entries.reduce((sum, e) => sum + e.byteLength, 0);
  const names =
    shards.length === 1 ? [`${baseName}.safetensors`] : shards.map((_, i) => shardName(baseName, i + 1, shards.length));

  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [i, shard] of shards.entries()) {
    const path = join(dir, names[i] ?? '');
    await writeSafetensors(path, shard, { metadata });
    files.push(path);
  }

  const indexName = `${baseName}.safetensors.index.json`;
  let indexFile: string | undefined;
  if (shards.length > 1) {
    const weightMap = new Map<string, string>();
    for (const [i, shard] of shards.entries()) for (const s of shard) weightMap.set(s.name, names[i] ?? '');
    indexFile = join(dir, indexName);
    const bytes = new TextEncoder().encode(shardIndexJson(totalSize, weightMap));
    await writeAtomically(indexFile, (handle) => writeAt(handle, bytes, 0));
  }
  await removeStale(dir, baseName, new Set(shards.length > 1 ? [...names, indexName] : names));

  const result: WrittenCheckpoint = { files, totalSize };
  if (indexFile !== undefined) result.indexFile = indexFile;
  return result;
}

export function shardName(baseName: string, index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${baseName}-${pad(index)}-of-${pad(count)}.safetensors`;
}

/**
 * Greedy split in input order, as huggingface_hub does it: a tensor larger than the limit gets
 * a shard of its own; otherwise a tensor that would push the current shard past the limit
 * closes it first.
 */
function planShards(sources: readonly TensorSource[], entries: readonly { byteLength: number }[], maxShardBytes: number): TensorSource[][] {
  const shards: TensorSource[][] = [];
  let current: TensorSource[] = [];
  let currentBytes = 0;
  for (const [i, source] of sources.entries()) {
    const size = entries[i]?.byteLength ?? 0;
    if (size > maxShardBytes) {
      shards.push([source]);
      continue;
    }
    if (currentBytes + size > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(source);
    currentBytes += size;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

async function removeStale(dir: string, baseName: string, keep: ReadonlySet<string>): Promise<void> {
  const stem = baseName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ours = new RegExp(`^${stem}(-\\d{5,}-of-\\d{5,})?\\.safetensors(\\.index\\.json)?$`);
  for (const name of await readdir(dir)) {
    if (ours.test(name) && !keep.has(name)) {
      await rm(join(dir, name), { force: true });
    }
  }
}
