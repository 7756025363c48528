// The bytes of a dataset or tokenizer file, however stored: the shape of @peft-ts/safetensors's
// ByteSource and FileTree, declared here structurally so this package needs no dependency for
// it. A Node file, a browser File or Blob, OPFS or bytes in memory all fit.

/** Random access to the bytes of one file. */
export interface ByteSource {
  /** For messages: a path, a file name, or a label. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** `length` bytes from `offset`; fewer only when the source ends first. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases what the source holds open; optional. */
  close?(): Promise<void>;
}

/** A directory of files, however stored (a model directory, a browser folder pick, memory). */
export interface FileTree {
  /** For messages, e.g. the directory path. */
  readonly name: string;
  /** File names relative to the root, '/'-separated. */
  list(): Promise<string[]>;
  /** The file of that name, or null when absent. */
  open(name: string): Promise<ByteSource | null>;
}

const encoder = new TextEncoder();

/** Text or bytes already in memory as a ByteSource named `name`. */
export function memorySource(name: string, data: string | Uint8Array): ByteSource {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  return { name, size: bytes.byteLength, read: (offset, length) => Promise.resolve(bytes.slice(offset, offset + length)) };
}

/** The source's bytes in order, `chunkSize` at a time. */
export async function* byteChunks(source: ByteSource, chunkSize = 1 << 20): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < source.size; ) {
    const chunk = await source.read(offset, Math.min(chunkSize, source.size - offset));
    if (chunk.byteLength === 0) return;
    offset += chunk.byteLength;
    yield chunk;
  }
}

/** The source's text, decoded as UTF-8 in chunks (a byte order mark is dropped). */
export async function* textChunks(source: ByteSource, chunkSize = 1 << 20): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of byteChunks(source, chunkSize)) {
    const text = decoder.decode(chunk, { stream: true });
    if (text !== '') yield text;
  }
  const rest = decoder.decode();
  if (rest !== '') yield rest;
}

/** The whole source as text. */
export async function readSourceText(source: ByteSource): Promise<string> {
  let text = '';
  for await (const chunk of textChunks(source)) text += chunk;
  return text;
}
