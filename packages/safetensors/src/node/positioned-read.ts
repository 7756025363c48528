// Reads a byte range of an open file with positioned reads, in chunks below the 2 GiB a single
// read may move, so tensors of any size load without reading the rest of the file.
import type { FileHandle } from 'node:fs/promises';
import { FormatError } from '@peft-ts/errors';

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
 * Fills `target` from `position` on. A read that comes back short (the file shrank since its
 * header was checked) is reported against `field`.
 */
export async function readAt(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  chunkBytes: number,
  where: { file: string; field: string },
): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(chunkBytes, target.byteLength - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new FormatError({
        ...where,
        expected: `${target.byteLength} bytes at file offset ${position}`,
        got: `end of file after ${done} bytes (the file was truncated after it was opened)`,
      });
    }
    done += bytesRead;
  }
}
