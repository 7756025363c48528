// The browser's origin-private file system (OPFS) as a FileTree the packages read and a
// WritableTree they write, so that a run's checkpoints survive a reload of the page.
import { blobSource, type ByteSource, type FileTree, type WritableTree } from '@peft-ts/safetensors';

export interface OpfsTree extends FileTree, WritableTree {
  /** Deletes one file or a whole folder (recursively); absent is fine. */
  remove(name: string): Promise<void>;
}

function parts(name: string): string[] {
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.includes('..')) throw new Error(`OPFS: bad file name ${JSON.stringify(name)}`);
  return segments;
}

const isNotFound = (error: unknown): boolean => error instanceof DOMException && (error.name === 'NotFoundError' || error.name === 'TypeMismatchError');

async function folder(root: FileSystemDirectoryHandle, segments: readonly string[], create: boolean): Promise<FileSystemDirectoryHandle | null> {
  let dir = root;
  for (const segment of segments) {
    try {
      dir = await dir.getDirectoryHandle(segment, { create });
    } catch (error) {
      if (!create && isNotFound(error)) return null;
      throw error;
    }
  }
  return dir;
}

async function walk(dir: FileSystemDirectoryHandle, prefix: string, into: string[]): Promise<void> {
  // `entries()` is in every browser with OPFS but not yet in TypeScript's DOM library.
  const entries = (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();
  for await (const [name, handle] of entries) {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (handle.kind === 'file') into.push(path);
    else await walk(handle as FileSystemDirectoryHandle, path, into);
  }
}

/**
 * The folder `path` ('/'-separated) of the origin's private file system, made when absent.
 * Writes go through `createWritable`, whose data replaces the file only when it is closed, so a
 * reload in the middle of a checkpoint leaves the previous file whole.
 */
export async function opfsTree(path: string): Promise<OpfsTree> {
  const root = await navigator.storage.getDirectory();
  const base = await folder(root, parts(path), true);
  if (!base) throw new Error(`OPFS: cannot open ${path}`);
  return {
    name: `opfs:${path}`,
    list: async () => {
      const names: string[] = [];
      await walk(base, '', names);
      return names.sort();
    },
    open: async (name): Promise<ByteSource | null> => {
      const segments = parts(name);
      const dir = await folder(base, segments.slice(0, -1), false);
      if (!dir) return null;
      try {
        const handle = await dir.getFileHandle(segments[segments.length - 1] ?? '');
        return blobSource(await handle.getFile(), `opfs:${path}/${name}`);
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
    },
    write: async (name, data) => {
      const segments = parts(name);
      const dir = await folder(base, segments.slice(0, -1), true);
      if (!dir) throw new Error(`OPFS: cannot make the folder of ${name}`);
      const handle = await dir.getFileHandle(segments[segments.length - 1] ?? '', { create: true });
      const writable = await handle.createWritable();
      try {
        await writable.write(typeof data === 'string' ? data : (data as Uint8Array<ArrayBuffer>));
        await writable.close();
      } catch (error) {
        await writable.abort().catch(() => undefined);
        throw error;
      }
    },
    remove: async (name) => {
      const segments = parts(name);
      const dir = await folder(base, segments.slice(0, -1), false);
      if (!dir) return;
      try {
        await dir.removeEntry(segments[segments.length - 1] ?? '', { recursive: true });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    },
  };
}
