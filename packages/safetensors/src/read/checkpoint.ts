// A model checkpoint: one .safetensors file or a directory holding one, or shards listed by a
// `*.safetensors.index.json`; every shard is opened and checked against the index up front.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import type { HostTensor } from '../format/dtype.js';
import { compareCodePoints, tensorField, type TensorInfo } from '../format/header.js';
import type { TensorSource } from '../write/tensor-source.js';
import { parseShardIndex } from './index-file.js';
import { SafetensorsFile, type OpenOptions } from './safetensors-file.js';

const SINGLE_NAME = 'model.safetensors';
const INDEX_NAME = 'model.safetensors.index.json';

export class Checkpoint {
  /** Paths of the .safetensors files, sorted. */
  readonly files: string[];
  /** The `__metadata__` of the single file, or of the first shard. */
  readonly metadata: Record<string, string> | undefined;
  /** Path of the index file for a sharded checkpoint. */
  readonly indexFile: string | undefined;
  /** `metadata.total_size` as the index states it, when it does. */
  readonly indexTotalSize: number | undefined;
  readonly #owner: Map<string, SafetensorsFile>;
  readonly #shards: SafetensorsFile[];

  private constructor(
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
   * Opens a .safetensors file, an index .json, or a directory. In a directory the order is the
   * one transformers uses: `model.safetensors`, then `model.safetensors.index.json`, then a
   * lone `*.safetensors.index.json` or a lone `*.safetensors`.
   */
  static async open(pathOrDir: string, options: OpenOptions = {}): Promise<Checkpoint> {
    const info = await stat(pathOrDir);
    let target = pathOrDir;
    if (info.isDirectory()) target = await pickInDirectory(pathOrDir);
    if (target.endsWith('.json')) {
      const { shards, owner, index } = await openSharded(target, options);
      return new Checkpoint(shards, owner, index);
    }
    const file = await SafetensorsFile.open(target, options);
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

async function pickInDirectory(dir: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => e.name);
  if (files.includes(SINGLE_NAME)) return join(dir, SINGLE_NAME);
  if (files.includes(INDEX_NAME)) return join(dir, INDEX_NAME);
  const indexes = files.filter((f) => f.endsWith('.safetensors.index.json'));
  if (indexes.length === 1 && indexes[0] !== undefined) return join(dir, indexes[0]);
  const singles = files.filter((f) => f.endsWith('.safetensors'));
  if (indexes.length === 0 && singles.length === 1 && singles[0] !== undefined) return join(dir, singles[0]);
  throw new FormatError({
    file: dir,
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

async function openSharded(indexPath: string, options: OpenOptions): Promise<OpenedShards> {
  const index = parseShardIndex(await readFile(indexPath, 'utf8'), indexPath);
  const dir = dirname(indexPath);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of index.weightMap) {
    const names = byShard.get(shard);
    if (names) names.push(name);
    else byShard.set(shard, [name]);
  }
  const shardNames = [...byShard.keys()].sort(compareCodePoints);

  for (const shard of shardNames) {
    const path = join(dir, shard);
    const exists = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) {
      const first = byShard.get(shard)?.[0] ?? '';
      throw new FormatError({
        file: indexPath,
        field: `weight_map[${JSON.stringify(first)}]`,
        expected: 'a shard file that exists beside the index',
        got: `${JSON.stringify(shard)}, which is missing (${path}); ${byShard.get(shard)?.length ?? 0} tensors map to it`,
      });
    }
  }

  const opened: SafetensorsFile[] = [];
  try {
    for (const shard of shardNames) opened.push(await SafetensorsFile.open(join(dir, shard), options));
    const byPath = new Map(shardNames.map((shard, i) => [shard, opened[i]]));
    const owner = new Map<string, SafetensorsFile>();
    for (const [name, shard] of index.weightMap) {
      const file = byPath.get(shard);
      if (!file) continue;
      if (!file.has(name)) {
        throw new FormatError({
          file: file.path,
          field: tensorField(name),
          expected: `the tensor, since ${basename(indexPath)} maps it to this shard`,
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
          expected: `only tensors that ${basename(indexPath)} maps to ${JSON.stringify(basename(file.path))}`,
          got: mapped === undefined ? 'a tensor the index does not list' : `a tensor the index maps to ${JSON.stringify(mapped)}`,
        });
      }
    }
    return { shards: opened, owner, index: { file: indexPath, totalSize: index.totalSize } };
  } catch (error) {
    await Promise.all(opened.map((f) => f.close()));
    throw error;
  }
}
