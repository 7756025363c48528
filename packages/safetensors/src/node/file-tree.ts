// The I/O interface on a Node file system: a file as a ByteSource read with positioned reads,
// a directory as a FileTree, and a directory written one atomic file at a time.
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import type { ByteSource, FileTree, WritableTree } from '../io/byte-source.js';
import { writeAt, writeAtomically } from './atomic-file.js';
import { checkChunkBytes, DEFAULT_READ_CHUNK_BYTES, readAt } from './positioned-read.js';

export interface FileSourceOptions {
  /** Largest single positioned read in bytes (default 1 GiB, at most just under 2 GiB). */
  readChunkBytes?: number;
}

/** The file at `path`, held open until close(); reads are positioned, in chunks. */
export async function fileSource(path: string, options: FileSourceOptions = {}): Promise<ByteSource & { close(): Promise<void> }> {
  const chunkBytes = checkChunkBytes(options.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES);
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  let closed = false;
  return {
    name: path,
    size,
    read: (offset, length) => readAt(handle, offset, length, chunkBytes),
    close: async () => {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** The path of `name` under `root`, refusing names that leave the directory. */
function inside(root: string, name: string): string {
  const path = join(root, ...name.split('/'));
  const rel = relative(root, path);
  if (name === '' || isAbsolute(name) || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new RangeError(`${root}: ${JSON.stringify(name)} is not a file name inside the directory`);
  }
  return path;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * The directory at `path` as a FileTree: list() gives every file below it ('/'-separated,
 * symbolic links to files included, sorted); open() gives a fileSource, or null when absent.
 */
export function dirTree(path: string, options: FileSourceOptions = {}): FileTree {
  checkChunkBytes(options.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES);
  return {
    name: path,
    list: async () => {
      const names: string[] = [];
      for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
        const full = join(entry.parentPath, entry.name);
        if (entry.isFile() || (entry.isSymbolicLink() && (await isFile(full)))) {
          names.push(relative(path, full).split(sep).join('/'));
        }
      }
      return names.sort();
    },
    open: async (name) => {
      const file = inside(path, name);
      return (await isFile(file)) ? fileSource(file, options) : null;
    },
  };
}

/** Writes files under the directory at `path` (created as needed), each through a temporary file and a rename. */
export function dirWriter(path: string): WritableTree {
  return {
    write: async (name, data) => {
      const file = inside(path, name);
      await mkdir(dirname(file), { recursive: true });
      const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
      await writeAtomically(file, (handle) => writeAt(handle, bytes, 0));
    },
  };
}
