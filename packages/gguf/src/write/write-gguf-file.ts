// Writes a GGUF file to disk (Node only: served by @peft-ts/gguf/node). The file appears under
// its name only when complete (a temporary sibling is written, synced and renamed).
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { GgufMetadata } from '../format/value.js';
import { checkTensorBytes, ggufFileBytes, ggufHeader, type GgufTensorSource, type WriteGgufResult } from './write-gguf.js';

/** Writes `path` atomically. Tensor data is produced and written one tensor at a time. */
export async function writeGguf(path: string, metadata: GgufMetadata, tensors: readonly GgufTensorSource[]): Promise<WriteGgufResult> {
  const { header, offsets, sizes, alignment } = ggufHeader(metadata, tensors);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx');
  let closed = false;
  try {
    await handle.write(header, 0, header.length, 0);
    let end = header.length;
    for (const [i, t] of tensors.entries()) {
      const data = await t.data();
      checkTensorBytes(path, t, data, sizes[i] ?? 0);
      const at = header.length + (offsets[i] ?? 0);
      let done = 0;
      while (done < data.byteLength) {
        const { bytesWritten } = await handle.write(data, done, Math.min(1 << 30, data.byteLength - done), at + done);
        done += bytesWritten;
      }
      end = at + data.byteLength;
    }
    const last = ggufFileBytes(header.length, offsets, sizes, alignment);
    if (last > end) await handle.write(new Uint8Array(last - end), 0, last - end, end);
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(temp, path);
    return { bytes: Math.max(last, end), tensors: tensors.length };
  } catch (error) {
    if (!closed) await handle.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}
