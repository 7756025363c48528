// Reads a byte range of an open file with positioned reads, in chunks below the 2 GiB a single
// read may move, so tensors of any size load without reading the rest of the file.
import type { FileHandle } from 'node:fs/promises';

/** Largest single read by default: well below the 2 GiB a single read call may move. */
export const DEFAULT_READ_CHUNK_BYTES = 1 << 30;
const MAX_READ_CHUNK_BYTES = 0x7fff_f000;

export function checkChunkBytes(chunkBytes: number): number {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_READ_CHUNK_BYTES) {
    throw new RangeError(`readChunkBytes must be an integer in [1, ${MAX_READ_CHUNK_BYTES}], got ${chunkBytes}`);
  }
  return chunkBytes;
}

/**
 * `length` bytes from `position` in a buffer of their own, read `chunkBytes` at a time. A file
 * that ends first (it shrank after it was opened) gives the bytes read so far.
 */
export async function readAt(handle: FileHandle, position: number, length: number, chunkBytes: number): Promise<Uint8Array> {
  const target = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(target, done, Math.min(chunkBytes, length - done), position + done);
    if (bytesRead === 0) return target.subarray(0, done);
    done += bytesRead;
  }
  return target;
}
