// Writes a file through a temporary sibling and a rename, so readers see the old file or the
// complete new one, never a partial write.
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Largest single write by default, well below the 2 GiB a single write call may move. */
export const DEFAULT_WRITE_CHUNK_BYTES = 1 << 30;

export async function writeAtomically<T>(path: string, write: (handle: FileHandle) => Promise<T>): Promise<T> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx');
  let open_ = true;
  try {
    const result = await write(handle);
    // Flush before the rename so a crash cannot leave the final name on an incomplete file.
    await handle.sync();
    open_ = false;
    await handle.close();
    await rename(temp, path);
    return result;
  } catch (error) {
    if (open_) await handle.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** Writes all of `bytes` at `position`, in chunks, looping over short writes. */
export async function writeAt(handle: FileHandle, bytes: Uint8Array, position: number, chunkBytes = DEFAULT_WRITE_CHUNK_BYTES): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const length = Math.min(chunkBytes, bytes.byteLength - done);
    const { bytesWritten } = await handle.write(bytes, done, length, position + done);
    done += bytesWritten;
  }
}
