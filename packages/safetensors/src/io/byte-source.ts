// The one small I/O interface every package reads and writes through, so that parsing works the
// same on a Node directory, a browser File/Blob, OPFS or bytes already in memory.
import { FormatError } from '@peft-ts/errors';

/** Random access to the bytes of one file, however stored. */
export interface ByteSource {
  /** For messages: a path, a file name, or a label such as "demo-model/config.json". */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /**
   * `length` bytes from `offset`, in a buffer the caller may keep and modify. Fewer bytes come
   * back only when the source ends first (a file truncated after it was opened).
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases what the source holds open (a file handle); optional, and safe to call twice. */
  close?(): Promise<void>;
}

/** A model, adapter or checkpoint directory, however stored. */
export interface FileTree {
  /** For messages, e.g. the directory path or "demo-model". */
  readonly name: string;
  /** File names relative to the root, '/'-separated. */
  list(): Promise<string[]>;
  /** The file of that name, or null when absent. */
  open(name: string): Promise<ByteSource | null>;
}

/** Where files are written: a directory, OPFS, or memory. Atomic per file where the medium allows. */
export interface WritableTree {
  write(name: string, data: Uint8Array | string): Promise<void>;
}

/** A tree in memory that can also be written to; `files` is the live content. */
export interface MemoryTree extends FileTree, WritableTree {
  readonly files: Map<string, Uint8Array | string | Blob>;
}

const encoder = new TextEncoder();

/** Bytes already in memory as a ByteSource; reads return copies. */
export function bytesSource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    read: (offset, length) => Promise.resolve(bytes.slice(offset, offset + length)),
  };
}

/** A Blob or File (a file input, a fetch response's blob, an OPFS file) as a ByteSource. */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const label = name ?? (typeof (blob as { name?: unknown }).name === 'string' ? (blob as File).name : 'blob');
  return {
    name: label,
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

/**
 * A tree held in memory: names ('/'-separated) to bytes, text or Blobs. Writing replaces an
 * entry; sources it opens are named `<tree name>/<file name>`.
 */
export function memoryTree(
  name: string,
  files: Map<string, Uint8Array | string | Blob> | Record<string, Uint8Array | string | Blob> = {},
): MemoryTree {
  const entries = files instanceof Map ? new Map(files) : new Map(Object.entries(files));
  return {
    name,
    files: entries,
    list: () => Promise.resolve([...entries.keys()].sort()),
    open: (file) => {
      const value = entries.get(file);
      const label = `${name}/${file}`;
      if (value === undefined) return Promise.resolve(null);
      if (typeof value === 'string') return Promise.resolve(bytesSource(label, encoder.encode(value)));
      if (value instanceof Uint8Array) return Promise.resolve(bytesSource(label, value));
      return Promise.resolve(blobSource(value, label));
    },
    write: (file, data) => {
      entries.set(file, typeof data === 'string' ? data : data.slice());
      return Promise.resolve();
    },
  };
}

/** The whole content of a source, checked to be complete. */
export async function readAll(source: ByteSource): Promise<Uint8Array> {
  const bytes = await source.read(0, source.size);
  if (bytes.byteLength !== source.size) {
    throw new FormatError({
      file: source.name,
      field: 'file',
      expected: `${source.size} bytes`,
      got: `end of file after ${bytes.byteLength} bytes (the file was truncated after it was opened)`,
    });
  }
  return bytes;
}

/** Opens `name` in `tree`, failing with the tree and the file named when it is absent. */
export async function openRequired(tree: FileTree, name: string): Promise<ByteSource> {
  const source = await tree.open(name);
  if (!source) throw new FormatError({ file: tree.name, field: name, expected: 'a file of that name', got: 'no such file' });
  return source;
}

/** The whole content of a file of the tree. */
export async function readBytes(tree: FileTree, name: string): Promise<Uint8Array> {
  const source = await openRequired(tree, name);
  try {
    return await readAll(source);
  } finally {
    await source.close?.();
  }
}

/** A file of the tree decoded as UTF-8 (a leading byte-order mark is dropped). */
export async function readText(tree: FileTree, name: string): Promise<string> {
  return new TextDecoder().decode(await readBytes(tree, name));
}

/** A file of the tree parsed as JSON; text that is not JSON fails naming the file. */
export async function readJson(tree: FileTree, name: string): Promise<unknown> {
  const text = await readText(tree, name);
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new FormatError({ file: `${tree.name}/${name}`, field: 'JSON', expected: 'valid JSON', got: (cause as Error).message, cause });
  }
}

/** `name` joined to a '/'-separated directory inside a tree ('' is the root). */
export function joinTreePath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The directory part of a '/'-separated tree path ('' for a name at the root). */
export function treeDirname(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}
