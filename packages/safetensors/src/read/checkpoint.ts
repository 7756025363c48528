// A model checkpoint: one .safetensors file or a tree holding one, or shards listed by a
// `*.safetensors.index.json`; every shard is opened and checked against the index up front.
import { FormatError } from '@peft-ts/errors';
import type { HostTensor } from '../format/dtype.js';
import { compareCodePoints, tensorField, type TensorInfo } from '../format/header.js';
import { joinTreePath, readText, treeDirname, type ByteSource, type FileTree } from '../io/byte-source.js';
import type { TensorSource } from '../write/tensor-source.js';
import { parseShardIndex } from './index-file.js';
import { SafetensorsFile } from './safetensors-file.js';

export interface CheckpointOpenOptions {
  /**
   * The file of the tree to open (a `.safetensors` file or a `*.safetensors.index.json`),
   * instead of picking one the way transformers does.
   */
  file?: string;
}

const SINGLE_NAME = 'model.safetensors';
const INDEX_NAME = 'model.safetensors.index.json';

export class Checkpoint {
  /** Paths (source names) of the .safetensors files, sorted. */
  readonly files: string[];
  /** The `__metadata__` of the single file, or of the first shard. */
  readonly metadata: Record<string, string> | undefined;
  /** Path of the index file for a sharded checkpoint. */
  readonly indexFile: string | undefined;
  /** `metadata.total_size` as the index states it, when it does. */
  readonly indexTotalSize: number | undefined;
  readonly #owner: Map<string, SafetensorsFile>;
  readonly #shards: SafetensorsFile[];

  protected constructor(
    shards: SafetensorsFile[],
    owner: Map<string, SafetensorsFile>,
    index?: { file: string; totalSize: number | undefined },
  ) {
    this.#shards = shards;
    this.#owner = owner;
    this.files = shards.map((s) => s.path);
    this.metadata = shards[0]?.metadata;
    this.indexFile = index?.file;
    this.indexTotalSize = index?.totalSize;
  }

  /**
   * Opens one .safetensors source, or a tree. In a tree the order is the one transformers uses:
   * `model.safetensors`, then `model.safetensors.index.json`, then a lone
   * `*.safetensors.index.json` or a lone `*.safetensors` (or `options.file` when given).
   */
  static async open(target: FileTree | ByteSource, options: CheckpointOpenOptions = {}): Promise<Checkpoint> {
    if (!isTree(target)) {
      const file = await SafetensorsFile.open(target);
      return new Checkpoint([file], new Map(file.names().map((n) => [n, file])));
    }
    const name = options.file ?? (await pickInTree(target));
    if (name.endsWith('.json')) {
      const { shards, owner, index } = await openSharded(target, name);
      return new Checkpoint(shards, owner, index);
    }
    const source = await target.open(name);
    if (!source) {
      throw new FormatError({ file: target.name, field: name, expected: 'a .safetensors file of that name', got: 'no such file' });
    }
    const file = await SafetensorsFile.open(source);
    return new Checkpoint([file], new Map(file.names().map((n) => [n, file])));
  }

  /** Tensor names: header order for one file, index order for shards. */
  names(): string[] {
    return [...this.#owner.keys()];
  }

  has(name: string): boolean {
    return this.#owner.has(name);
  }

  info(name: string): TensorInfo & { file: string } {
    const file = this.#file(name);
    return { ...file.info(name), file: file.path };
  }

  /** Sum of all tensors' byte lengths. */
  get totalSize(): number {
    let total = 0;
    for (const [name, file] of this.#owner) total += file.info(name).byteLength;
    return total;
  }

  readBytes(name: string): Promise<Uint8Array> {
    return this.#file(name).readBytes(name);
  }

  read(name: string): Promise<HostTensor> {
    return this.#file(name).read(name);
  }

  readF32(name: string): Promise<Float32Array> {
    return this.#file(name).readF32(name);
  }

  /** Lazy sources for every tensor, in `names()` order, to pass to a writer. */
  sources(): TensorSource[] {
    return this.names().map((name) => {
      const { dtype, shape } = this.info(name);
      return { name, dtype, shape, data: () => this.readBytes(name) };
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.close()));
  }

  #file(name: string): SafetensorsFile {
    const file = this.#owner.get(name);
    if (!file) {
      throw new FormatError({
        file: this.indexFile ?? this.files[0] ?? '(checkpoint)',
        field: tensorField(name),
        expected: `a tensor of that name (the checkpoint has ${this.#owner.size})`,
        got: 'no such tensor',
      });
    }
    return file;
  }
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function isTree(target: FileTree | ByteSource): target is FileTree {
  return typeof (target as Partial<FileTree>).list === 'function';
}

async function pickInTree(tree: FileTree): Promise<string> {
  const files = (await tree.list()).filter((name) => !name.includes('/'));
  if (files.includes(SINGLE_NAME)) return SINGLE_NAME;
  if (files.includes(INDEX_NAME)) return INDEX_NAME;
  const indexes = files.filter((f) => f.endsWith('.safetensors.index.json'));
  if (indexes.length === 1 && indexes[0] !== undefined) return indexes[0];
  const singles = files.filter((f) => f.endsWith('.safetensors'));
  if (indexes.length === 0 && singles.length === 1 && singles[0] !== undefined) return singles[0];
  throw new FormatError({
    file: tree.name,
    field: 'checkpoint directory',
    expected: `${SINGLE_NAME}, ${INDEX_NAME}, or exactly one *.safetensors.index.json or *.safetensors file`,
    got: [...indexes, ...singles].length ? [...indexes, ...singles].sort(compareCodePoints).join(', ') : 'none of them',
  });
}

interface OpenedShards {
  shards: SafetensorsFile[];
  owner: Map<string, SafetensorsFile>;
  index: { file: string; totalSize: number | undefined };
}

async function openSharded(tree: FileTree, indexName: string): Promise<OpenedShards> {
  const indexPath = `${tree.name}/${indexName}`;
  const index = parseShardIndex(await readText(tree, indexName), indexPath);
  const dir = treeDirname(indexName);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of index.weightMap) {
    const names = byShard.get(shard);
    if (names) names.push(name);
    else byShard.set(shard, [name]);
  }
  const shardNames = [...byShard.keys()].sort(compareCodePoints);

  const sources: ByteSource[] = [];
  for (const shard of shardNames) {
    const source = await tree.open(joinTreePath(dir, shard));
    if (!source) {
      for (const s of sources) await s.close?.();
      const first = byShard.get(shard)?.[0] ?? '';
      throw new FormatError({
        file: indexPath,
        field: `weight_map[${JSON.stringify(first)}]`,
        expected: 'a shard file that exists beside the index',
        got: `${JSON.stringify(shard)}, which is missing (${tree.name}/${joinTreePath(dir, shard)}); ${byShard.get(shard)?.length ?? 0} tensors map to it`,
      });
    }
    sources.push(source);
  }

  const opened: SafetensorsFile[] = [];
  try {
    for (const source of sources) opened.push(await SafetensorsFile.open(source));
    const byPath = new Map(shardNames.map((shard, i) => [shard, opened[i]]));
    const owner = new Map<string, SafetensorsFile>();
    for (const [name, shard] of index.weightMap) {
      const file = byPath.get(shard);
      if (!file) continue;
      if (!file.has(name)) {
        throw new FormatError({
          file: file.path,
          field: tensorField(name),
          expected: `the tensor, since ${baseName(indexPath)} maps it to this shard`,
          got: 'no such tensor in the shard',
        });
      }
      owner.set(name, file);
    }
    for (const file of opened) {
      for (const name of file.names()) {
        if (owner.get(name) === file) continue;
        const mapped = index.weightMap.get(name);
        throw new FormatError({
          file: file.path,
          field: tensorField(name),
          expected: `only tensors that ${baseName(indexPath)} maps to ${JSON.stringify(baseName(file.path))}`,
          got: mapped === undefined ? 'a tensor the index does not list' : `a tensor the index maps to ${JSON.stringify(mapped)}`,
        });
      }
    }
    return { shards: opened, owner, index: { file: indexPath, totalSize: index.totalSize } };
  } catch (error) {
    await Promise.all(opened.map((f) => f.close()));
    // A source that failed to open was closed by SafetensorsFile.open; the ones after it never opened.
    for (const s of sources.slice(opened.length + 1)) await s.close?.();
    throw error;
  }
}
