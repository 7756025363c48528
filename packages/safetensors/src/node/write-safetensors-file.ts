// Writing a .safetensors file to disk: the header first, then each tensor's bytes streamed in
// turn into a temporary file that is renamed into place, so no whole file sits in memory.
import { encodeHeader } from '../format/header.js';
import { checkMetadata, collectSources, dataBytes, describeSources, type WriteOptions } from '../write/write-safetensors.js';
import type { TensorData, TensorSource } from '../write/tensor-source.js';
import { writeAt, writeAtomically } from './atomic-file.js';

/**
 * Writes a .safetensors file atomically. The descriptors are gathered first (the header needs
 * every shape up front); then each tensor's data, lazy functions included, is fetched and
 * written one at a time in file order.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<TensorSource> | AsyncIterable<TensorSource>,
  options: WriteOptions = {},
): Promise<void> {
  const sources = await collectSources(tensors);
  const metadata = checkMetadata(options.metadata, path);
  const entries = describeSources(sources, path);
  const header = encodeHeader(entries, metadata);
  await writeAtomically(path, async (handle) => {
    await writeAt(handle, header.bytes, 0);
    const dataStart = header.bytes.byteLength;
    for (const entry of header.layout) {
      const { source } = entry;
      const data: TensorData = typeof source.data === 'function' ? await source.data() : source.data;
      await writeAt(handle, dataBytes(entry, data, path), dataStart + entry.begin);
    }
  });
}
