// Where a run keeps what it writes (checkpoints, the adapter, metrics, the loss curve, the
// summary): a directory in Node (`outputDirStore` of @peft-ts/trainer/node), the browser's
// origin-private file system, or memory. Names are '/'-separated and relative to the store.
import { memoryTree, type ByteSource, type FileTree, type WritableTree } from '@peft-ts/safetensors';

export interface RunStore extends FileTree, WritableTree {
  /** Removes the file `name`, or everything under `name/` (an old checkpoint); absent is fine. */
  remove(name: string): Promise<void>;
  /** Adds text to the end of a file (made when absent); without it the file is rewritten whole. */
  append?(name: string, text: string): Promise<void>;
  /**
   * Writes the folder `name` so that it appears whole or not at all, replacing an earlier one
   * (a directory store fills a temporary sibling and renames it). Without it the folder is
   * removed and its files written one by one; readers then look for a checkpoint's
   * trainer_state.json, written last, before trusting it.
   */
  writeFolder?(name: string, fill: (out: WritableTree) => Promise<void>): Promise<void>;
  /** How to name one of its files to a person (a path); default `<store name>/<name>`. */
  where?(name: string): string;
}

/** A run store in memory, e.g. to train in a browser without keeping checkpoints, or in tests. */
export interface MemoryRunStore extends RunStore {
  readonly files: Map<string, Uint8Array | string | Blob>;
}

export function memoryRunStore(name = 'run'): MemoryRunStore {
  const tree = memoryTree(name);
  return {
    name,
    files: tree.files,
    list: () => tree.list(),
    open: (file) => tree.open(file),
    write: (file, data) => tree.write(file, data),
    remove: (file) => {
      for (const key of [...tree.files.keys()]) if (key === file || key.startsWith(`${file}/`)) tree.files.delete(key);
      return Promise.resolve();
    },
  };
}

/** `name` inside `store`, as a person should read it. */
export function whereIn(store: RunStore, name: string): string {
  return store.where ? store.where(name) : `${store.name.replace(/\/+$/, '')}/${name}`;
}

/** The files of `tree` under `folder/`, as a tree of their own. */
export function subTree(tree: FileTree, folder: string, name = `${tree.name.replace(/\/+$/, '')}/${folder}`): FileTree {
  const prefix = `${folder}/`;
  return {
    name,
    list: async () => (await tree.list()).filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)),
    open: (file): Promise<ByteSource | null> => tree.open(`${prefix}${file}`),
  };
}

/** Writes into `folder/` of `out`. */
export function subWriter(out: WritableTree, folder: string): WritableTree {
  return { write: (file, data) => out.write(`${folder}/${file}`, data) };
}

/** Writes a folder whole (writeFolder) or file by file after removing the old one. */
export async function writeFolder(store: RunStore, name: string, fill: (out: WritableTree) => Promise<void>): Promise<void> {
  if (store.writeFolder) return store.writeFolder(name, fill);
  await store.remove(name);
  await fill(subWriter(store, name));
}

/** A file's text, or null when the store has no such file. */
export async function readStoreText(tree: FileTree, name: string): Promise<string | null> {
  const source = await tree.open(name);
  if (!source) return null;
  try {
    return new TextDecoder().decode(await source.read(0, source.size));
  } finally {
    await source.close?.();
  }
}
