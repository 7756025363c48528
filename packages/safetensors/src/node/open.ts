// SafetensorsFile and Checkpoint that also open paths: a file, an index .json, or a directory.
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { ByteSource, FileTree } from '../io/byte-source.js';
import { Checkpoint as CheckpointBase, type CheckpointOpenOptions } from '../read/checkpoint.js';
import { SafetensorsFile as SafetensorsFileBase } from '../read/safetensors-file.js';
import { dirTree, fileSource, type FileSourceOptions } from './file-tree.js';
import { checkChunkBytes, DEFAULT_READ_CHUNK_BYTES } from './positioned-read.js';

export type OpenOptions = FileSourceOptions;

export class SafetensorsFile extends SafetensorsFileBase {
  /** Opens the file at `path` (or a ByteSource), reads and validates its header; tensor bytes stay on disk until asked for. */
  static override async open(pathOrSource: string | ByteSource, options: OpenOptions = {}): Promise<SafetensorsFileBase> {
    if (typeof pathOrSource !== 'string') return SafetensorsFileBase.open(pathOrSource);
    return SafetensorsFileBase.open(await fileSource(pathOrSource, options));
  }
}

export class Checkpoint extends CheckpointBase {
  /**
   * Opens a .safetensors file, an index .json, or a directory (or a FileTree/ByteSource). In a
   * directory the order is the one transformers uses: `model.safetensors`, then
   * `model.safetensors.index.json`, then a lone `*.safetensors.index.json` or a lone `*.safetensors`.
   */
  static override async open(
    target: string | FileTree | ByteSource,
    options: OpenOptions & CheckpointOpenOptions = {},
  ): Promise<CheckpointBase> {
    const { readChunkBytes, ...rest } = options;
    if (typeof target !== 'string') return CheckpointBase.open(target, rest);
    const sourceOptions = { readChunkBytes: checkChunkBytes(readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES) };
    const info = await stat(target);
    if (info.isDirectory()) return CheckpointBase.open(dirTree(target, sourceOptions), rest);
    if (target.endsWith('.json')) return CheckpointBase.open(dirTree(dirname(target), sourceOptions), { file: basename(target) });
    return CheckpointBase.open(await fileSource(target, sourceOptions));
  }
}
